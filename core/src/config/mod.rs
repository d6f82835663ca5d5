//! smtpd.conf configuration (filled in by the configuration work).
