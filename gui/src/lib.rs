//! iptviz-gui: the desktop app, as a library so that tests can drive it
//! without a window.

pub mod app;
pub mod bench;
pub mod capture_state;
pub mod compare_state;
pub mod conntrack_state;
pub mod export;
pub mod graph;
pub mod jobs;
pub mod lint_state;
pub mod palette;
pub mod reach_state;
pub mod scene;
pub mod settings;
pub mod state;
pub mod trace_state;
pub mod views;

pub use app::{IptvizApp, Options};
