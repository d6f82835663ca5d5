//! SMTP grammar.
