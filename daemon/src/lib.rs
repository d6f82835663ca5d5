//! petrel-daemon: the production tokio shell around `petrel-core`.
