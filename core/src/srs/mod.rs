//! Sender Rewriting Scheme (filled in by the SRS work).
