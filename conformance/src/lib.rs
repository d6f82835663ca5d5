//! petrel-conformance: SMTP conformance cases, runners and reports.
