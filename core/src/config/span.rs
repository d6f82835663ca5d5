//! Source positions, and the source files they point into.

use std::fmt;

/// Where a piece of configuration came from: a file, a byte range in it, and the line and column
/// (both 1-based, the column counted in characters) of its first byte.
///
/// `file` indexes [`Config::files`](super::Config::files): 0 is the main file, included files
/// follow in the order they were read. Text produced by a macro expansion carries the span of
/// the `$name` that produced it.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Index of the file in [`Config::files`](super::Config::files).
    pub file: u32,
    /// Byte offset of the first byte.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
    /// Line of the first byte, from 1.
    pub line: u32,
    /// Column of the first byte in characters, from 1.
    pub column: u32,
}

impl Span {
    /// The span from the start of `self` to the end of `end`, when both lie in the same file in
    /// that order; `self` otherwise (a macro expansion can make spans run backwards).
    #[must_use]
    pub(crate) fn to(self, end: Span) -> Span {
        if end.file == self.file && end.offset >= self.offset {
            Span {
                len: end.offset + end.len - self.offset,
                ..self
            }
        } else {
            self
        }
    }
}

// Compact on purpose: spans appear in every `{:#?}` of a configuration.
impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Span({}:{}:{})", self.file, self.line, self.column)
    }
}

/// One source file held while parsing: its name as given and its text.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub name: String,
    pub text: String,
    /// Byte offset of the start of each line, to turn offsets back into lines and columns.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: &str, text: &str) -> SourceFile {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            name: name.to_owned(),
            text: text.to_owned(),
            line_starts,
        }
    }

    /// Line and column (both from 1, column in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (to_u32(line + 1), to_u32(column + 1))
    }

    /// The text of a line (from 1) without its line ending.
    pub fn line_text(&self, line: u32) -> &str {
        let index = (line as usize).saturating_sub(1);
        let Some(&start) = self.line_starts.get(index) else {
            return "";
        };
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |&next| next - 1);
        self.text[start..end].trim_end_matches('\r')
    }
}

/// Offsets and counts in a configuration file fit in 32 bits; saturate rather than wrap if not.
pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let file = SourceFile::new("f", "ab\n\u{e9}t\u{e9} x\n");
        assert_eq!(file.position(0), (1, 1));
        assert_eq!(file.position(3), (2, 1));
        // "été " is 6 bytes but 4 characters.
        assert_eq!(file.position(9), (2, 5));
        assert_eq!(file.line_text(2), "\u{e9}t\u{e9} x");
        assert_eq!(file.line_text(3), "");
        assert_eq!(file.line_text(9), "");
    }
}
