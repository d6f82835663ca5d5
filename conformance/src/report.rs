//! Reports: a terminal summary, and in a report directory Markdown, JSON, JUnit XML and a
//! single-file HTML page. Every renderer takes one or more [`SuiteReport`]s (one per server) and
//! shows them side by side: a matrix of cases by server.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::case::Level;
use crate::suite::{CaseResult, Status, SuiteReport};

/// The JSON document: every run, with when and by what it was made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Document {
    /// `petrel-conformance` and its version.
    pub tool: String,
    /// When the document was written (UTC, RFC 3339).
    pub generated: String,
    /// One run per server.
    pub runs: Vec<SuiteReport>,
}

/// The current time as `2025-01-31T12:34:56Z`.
#[must_use]
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Formats seconds since the Unix epoch as an RFC 3339 UTC time.
#[must_use]
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// One line per level and the MUST failures, for the terminal.
#[must_use]
pub fn summary(report: &SuiteReport) -> String {
    let mut s = String::new();
    let t = &report.target;
    let _ = writeln!(
        s,
        "{} ({} via {}): {} cases in {:.1} s",
        t.name,
        t.address,
        t.runner,
        report.results.len(),
        report.millis as f64 / 1000.0
    );
    if let Some(e) = &report.profile.error {
        let _ = writeln!(s, "  probe: {e}");
    }
    for level in Level::ALL {
        let c = report.counts(Some(level));
        let _ = writeln!(
            s,
            "  {:<6} {:>3} pass {:>3} fail {:>3} skip",
            level.as_str(),
            c.pass,
            c.fail,
            c.skip
        );
    }
    let failures: Vec<&CaseResult> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "  failures:");
        for r in failures {
            let _ = writeln!(s, "    [{}] {}: {}", r.level, r.id, r.detail);
        }
    }
    s
}

/// The case rows of a matrix: every case id in the order first seen, with one result per run.
fn matrix(runs: &[SuiteReport]) -> Vec<(&CaseResult, Vec<Option<&CaseResult>>)> {
    let mut order: Vec<&CaseResult> = Vec::new();
    let mut seen = HashMap::new();
    for run in runs {
        for r in &run.results {
            if !seen.contains_key(r.id.as_str()) {
                seen.insert(r.id.as_str(), order.len());
                order.push(r);
            }
        }
    }
    let index: Vec<HashMap<&str, &CaseResult>> = runs
        .iter()
        .map(|run| run.results.iter().map(|r| (r.id.as_str(), r)).collect())
        .collect();
    order
        .into_iter()
        .map(|case| {
            let row = index
                .iter()
                .map(|m| m.get(case.id.as_str()).copied())
                .collect();
            (case, row)
        })
        .collect()
}

/// The rows where the first run's status differs from that of every other run, among cases
/// that ran (were not skipped) in every run. Empty with fewer than three runs.
#[must_use]
pub fn odd_one_out(runs: &[SuiteReport]) -> Vec<(&CaseResult, Vec<Option<&CaseResult>>)> {
    if runs.len() < 3 {
        return Vec::new();
    }
    matrix(runs)
        .into_iter()
        .filter(|(_, row)| {
            let Some(statuses) = row
                .iter()
                .map(|r| r.map(|r| r.status))
                .collect::<Option<Vec<Status>>>()
            else {
                return false;
            };
            !statuses.contains(&Status::Skip) && statuses[1..].iter().all(|s| *s != statuses[0])
        })
        .collect()
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report: per-server counts by level, then the matrix with the observations of
/// failures below it.
#[must_use]
pub fn markdown(runs: &[SuiteReport]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Results\n");
    let _ = writeln!(
        s,
        "| server | runner | MUST (pass/fail/skip) | SHOULD | MAY |"
    );
    let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
    for run in runs {
        let cell = |l| {
            let c = run.counts(Some(l));
            format!("{}/{}/{}", c.pass, c.fail, c.skip)
        };
        let _ = writeln!(
            s,
            "| {} | {} {} | {} | {} | {} |",
            md_cell(&run.target.name),
            run.target.runner,
            md_cell(&run.target.address),
            cell(Level::Must),
            cell(Level::Should),
            cell(Level::May)
        );
    }
    let _ = writeln!(s, "\n## Cases\n");
    let mut header = String::from("| case | RFC § | level |");
    let mut rule = String::from("| --- | --- | --- |");
    for run in runs {
        let _ = write!(header, " {} |", md_cell(&run.target.name));
        rule.push_str(" --- |");
    }
    let _ = writeln!(s, "{header}\n{rule}");
    for (case, row) in matrix(runs) {
        let _ = write!(
            s,
            "| `{}` | {} §{} | {} |",
            case.id, case.rfc, case.section, case.level
        );
        for r in row {
            let cell = match r.map(|r| r.status) {
                Some(Status::Pass) => "pass",
                Some(Status::Fail) => "**FAIL**",
                Some(Status::Skip) => "skip",
                None => "–",
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    let odd = odd_one_out(runs);
    if !odd.is_empty() {
        let _ = writeln!(
            s,
            "\n## Where {} differs from every other server\n",
            md_cell(&runs[0].target.name)
        );
        let _ = writeln!(
            s,
            "Cases that ran everywhere (skipped nowhere) and where the first server's result is \
             not that of any other.\n"
        );
        let _ = writeln!(
            s,
            "| case | level | {} | others |",
            md_cell(&runs[0].target.name)
        );
        let _ = writeln!(s, "| --- | --- | --- | --- |");
        for (case, row) in odd {
            let first = row[0].map_or("–", |r| r.status.as_str());
            let others: Vec<String> = row[1..]
                .iter()
                .zip(&runs[1..])
                .map(|(r, run)| {
                    let r = r.expect("present in every run");
                    format!("{}: {}", run.target.name, r.status.as_str())
                })
                .collect();
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                case.id,
                case.level,
                first,
                md_cell(&others.join(", "))
            );
        }
    }
    let mut any = false;
    for run in runs {
        let failed: Vec<&CaseResult> = run
            .results
            .iter()
            .filter(|r| r.status == Status::Fail)
            .collect();
        if failed.is_empty() {
            continue;
        }
        if !any {
            let _ = writeln!(s, "\n## Failures\n");
            any = true;
        }
        let _ = writeln!(s, "### {}\n", md_cell(&run.target.name));
        for r in failed {
            let _ = writeln!(
                s,
                "- **{}** `{}` ({} §{}): {}  \n  observed: {}",
                r.level,
                r.id,
                r.rfc,
                r.section,
                md_cell(&r.title),
                md_cell(&r.detail)
            );
        }
        s.push('\n');
    }
    s
}

/// The JSON document of `runs`.
///
/// # Panics
/// Never: the report types always serialise.
#[must_use]
pub fn json(runs: &[SuiteReport]) -> String {
    let doc = Document {
        tool: format!("petrel-conformance {}", env!("CARGO_PKG_VERSION")),
        generated: now_rfc3339(),
        runs: runs.to_vec(),
    };
    serde_json::to_string_pretty(&doc).expect("reports serialise")
}

/// Reads a JSON document written by [`json`].
///
/// # Errors
/// The file cannot be read or is not such a document.
pub fn read_json(path: &Path) -> io::Result<Vec<SuiteReport>> {
    let text = std::fs::read_to_string(path)?;
    let doc: Document = serde_json::from_str(&text).map_err(io::Error::other)?;
    Ok(doc.runs)
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test suite per server, one test case per case (class name: its RFC).
#[must_use]
pub fn junit(runs: &[SuiteReport]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: usize = runs.iter().map(|r| r.results.len()).sum();
    let failures: usize = runs.iter().map(|r| r.counts(None).fail).sum();
    let skipped: usize = runs.iter().map(|r| r.counts(None).skip).sum();
    let _ = writeln!(
        s,
        "<testsuites name=\"petrel-conformance\" tests=\"{total}\" failures=\"{failures}\" skipped=\"{skipped}\">"
    );
    for run in runs {
        let c = run.counts(None);
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{:.3}\" timestamp=\"{}\" hostname=\"{}\">",
            xml(&run.target.name),
            run.results.len(),
            c.fail,
            c.skip,
            run.millis as f64 / 1000.0,
            xml(run.started.trim_end_matches('Z')),
            xml(&run.target.address)
        );
        for r in &run.results {
            let _ = write!(
                s,
                "    <testcase classname=\"rfc{}.{}\" name=\"{} [{}]\" time=\"{:.3}\"",
                r.rfc,
                r.level.as_str().to_ascii_lowercase(),
                xml(&r.id),
                r.level,
                r.millis as f64 / 1000.0
            );
            match r.status {
                Status::Pass => s.push_str("/>\n"),
                Status::Skip => {
                    let _ = writeln!(
                        s,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(&r.detail)
                    );
                }
                Status::Fail => {
                    let _ = writeln!(
                        s,
                        ">\n      <failure message=\"{}\" type=\"{}\">{} (RFC {} §{}): {}\n\n{}</failure>\n    </testcase>",
                        xml(&r.detail),
                        r.level,
                        xml(&r.title),
                        r.rfc,
                        xml(&r.section),
                        xml(&r.detail),
                        xml(&r.transcript)
                    );
                }
            }
        }
        let _ = writeln!(s, "  </testsuite>");
    }
    s.push_str("</testsuites>\n");
    s
}

fn html_text(text: &str) -> String {
    xml(text)
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;margin-top:1em}\
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}\
th{background:#f0f0f0;position:sticky;top:0}\
td.pass{background:#c8efc8}td.fail{background:#f4b5b5;font-weight:bold}\
td.skip{background:#eee;color:#777}td.none{background:#fff}\
td.MUST{color:#900;font-weight:bold}td.SHOULD{color:#a60}td.MAY{color:#369}\
td.res{cursor:pointer;text-align:center}\
.controls label{margin-right:1em}\
.summary td{text-align:right}\
pre{white-space:pre-wrap;margin:0;font-size:12px;max-width:70em}\
tr.detail td{background:#fafafa}";

const SCRIPT: &str = r"
function applyFilters(){
  var rfc=document.getElementById('f-rfc').value;
  var lvl=document.getElementById('f-level').value;
  var st=document.getElementById('f-status').value;
  var q=document.getElementById('f-text').value.toLowerCase();
  var rows=document.querySelectorAll('tr.case');
  for(var i=0;i<rows.length;i++){
    var r=rows[i];
    var ok=(rfc===''||r.dataset.rfc===rfc)&&(lvl===''||r.dataset.level===lvl)
      &&(st===''||r.dataset.status.indexOf(st)>=0)
      &&(q===''||r.dataset.id.indexOf(q)>=0||r.dataset.title.indexOf(q)>=0);
    r.style.display=ok?'':'none';
    var d=document.getElementById('d-'+r.dataset.n);
    if(d&&!ok){d.style.display='none';}
  }
}
function toggle(n,k){
  var d=document.getElementById('d-'+n);
  var p=document.getElementById('p-'+n+'-'+k);
  if(!d||!p)return;
  var shown=d.style.display!=='none'&&d.dataset.k===String(k);
  d.style.display=shown?'none':'';
  d.dataset.k=String(k);
  d.querySelector('td').innerHTML=p.innerHTML;
}
";

/// The single-file HTML page: a matrix of cases by server, colour-coded, with filters for RFC,
/// level, status and text; clicking a result shows what was observed and the transcript.
#[must_use]
pub fn html(runs: &[SuiteReport]) -> String {
    let rows = matrix(runs);
    let mut rfcs: Vec<u16> = rows.iter().map(|(c, _)| c.rfc).collect();
    rfcs.sort_unstable();
    rfcs.dedup();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>SMTP conformance</title><style>{STYLE}</style></head><body>\n\
         <h1>SMTP conformance</h1>\n<p>Generated {} by petrel-conformance {}.</p>\n",
        now_rfc3339(),
        env!("CARGO_PKG_VERSION")
    );
    s.push_str("<table class=\"summary\"><tr><th>server</th><th>address</th><th>runner</th>");
    for l in Level::ALL {
        let _ = write!(s, "<th>{l} pass</th><th>{l} fail</th><th>{l} skip</th>");
    }
    s.push_str("</tr>\n");
    for run in runs {
        let _ = write!(
            s,
            "<tr><th>{}</th><td>{}</td><td>{}</td>",
            html_text(&run.target.name),
            html_text(&run.target.address),
            html_text(&run.target.runner)
        );
        for l in Level::ALL {
            let c = run.counts(Some(l));
            let _ = write!(
                s,
                "<td>{}</td><td class=\"{}\">{}</td><td>{}</td>",
                c.pass,
                if c.fail > 0 { "fail" } else { "pass" },
                c.fail,
                c.skip
            );
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n<p class=\"controls\">\n<label>RFC <select id=\"f-rfc\" onchange=\"applyFilters()\"><option value=\"\">all</option>");
    for rfc in &rfcs {
        let _ = write!(s, "<option value=\"{rfc}\">{rfc}</option>");
    }
    s.push_str("</select></label>\n<label>level <select id=\"f-level\" onchange=\"applyFilters()\"><option value=\"\">all</option>");
    for l in Level::ALL {
        let _ = write!(s, "<option>{l}</option>");
    }
    s.push_str(
        "</select></label>\n<label>result <select id=\"f-status\" onchange=\"applyFilters()\">\
         <option value=\"\">all</option><option value=\"fail\">any fail</option>\
         <option value=\"pass\">any pass</option><option value=\"skip\">any skip</option>\
         </select></label>\n<label>search <input id=\"f-text\" oninput=\"applyFilters()\"></label>\n</p>\n",
    );
    s.push_str(
        "<table id=\"matrix\"><thead><tr><th>case</th><th>RFC §</th><th>level</th><th>title</th>",
    );
    for run in runs {
        let _ = write!(s, "<th>{}</th>", html_text(&run.target.name));
    }
    s.push_str("</tr></thead><tbody>\n");
    let cols = 4 + runs.len();
    for (n, (case, row)) in rows.iter().enumerate() {
        let statuses: Vec<&str> = row
            .iter()
            .map(|r| r.map_or("none", |r| r.status.as_str()))
            .collect();
        let _ = write!(
            s,
            "<tr class=\"case\" data-n=\"{n}\" data-rfc=\"{}\" data-level=\"{}\" data-status=\"{}\" data-id=\"{}\" data-title=\"{}\">\
             <td><code>{}</code></td><td>{} §{}</td><td class=\"{}\">{}</td><td>{}</td>",
            case.rfc,
            case.level,
            statuses.join(" "),
            html_text(&case.id.to_lowercase()),
            html_text(&case.title.to_lowercase()),
            html_text(&case.id),
            case.rfc,
            html_text(&case.section),
            case.level,
            case.level,
            html_text(&case.title)
        );
        for (k, r) in row.iter().enumerate() {
            match r {
                None => s.push_str("<td class=\"res none\">–</td>"),
                Some(r) => {
                    let _ = write!(
                        s,
                        "<td class=\"res {}\" title=\"{}\" onclick=\"toggle({n},{k})\">{}</td>",
                        r.status.as_str(),
                        html_text(&r.detail),
                        r.status.as_str()
                    );
                }
            }
        }
        s.push_str("</tr>\n");
        // The details of each server's result, shown on click.
        let _ = writeln!(
            s,
            "<tr class=\"detail\" id=\"d-{n}\" style=\"display:none\"><td colspan=\"{cols}\"></td></tr>"
        );
        for (k, r) in row.iter().enumerate() {
            if let Some(r) = r {
                let _ = writeln!(
                    s,
                    "<template id=\"p-{n}-{k}\"><b>{}</b>: {} {}<pre>{}</pre></template>",
                    html_text(&runs[k].target.name),
                    r.status.as_str(),
                    html_text(&r.detail),
                    html_text(&r.transcript)
                );
            }
        }
    }
    let _ = write!(
        s,
        "</tbody></table>\n<script>{SCRIPT}</script>\n</body></html>\n"
    );
    s
}

/// Writes `report.md`, `report.json`, `junit.xml` and `report.html` into `dir`.
///
/// # Errors
/// A file cannot be written.
pub fn write_all(dir: &Path, runs: &[SuiteReport]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let title = "# SMTP conformance report\n\n";
    std::fs::write(dir.join("report.md"), format!("{title}{}", markdown(runs)))?;
    std::fs::write(dir.join("report.json"), json(runs))?;
    std::fs::write(dir.join("junit.xml"), junit(runs))?;
    std::fs::write(dir.join("report.html"), html(runs))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(xml("a<b&\"c\"\u{1}"), "a&lt;b&amp;&quot;c&quot;\\x01");
    }
}
