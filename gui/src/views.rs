//! One file per view. A view draws from `&AppState` and returns the
//! [`Action`]s the user asked for; the app applies them.

pub mod canvas;
pub mod capture;
pub mod chains;
pub mod compare;
pub mod conntrack;
pub mod dialogs;
pub mod dock;
pub mod flow;
pub mod problems;
pub mod reach;
pub mod rules;
pub mod toolbar;
pub mod trace;

use crate::state::{ChainRef, View};

/// The frame of a side, top or bottom panel without its background: the
/// window is cleared to the panel colour (see `IptvizApp`'s `clear_color`),
/// so painting it again only costs time. With Mesa's software renderer
/// every filled panel is one more pass over its pixels in every frame: the
/// panels of the Conntrack tab covered the window once more and took a
/// third of the renderer's time per frame.
pub fn bare_panel(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::side_top_panel(ui.style()).fill(egui::Color32::TRANSPARENT)
}

/// The central panel's frame without its background (see [`bare_panel`]).
pub fn bare_central(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT)
}

/// Something the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Select a chain.
    Select(ChainRef),
    /// Follow a jump from the selected chain to the named chain.
    Follow(String),
    /// Show another table.
    SetTable(usize),
    /// Open or fold a group of the current table (the library's group id).
    ToggleGroup(String),
    /// History.
    Back,
    /// History.
    Forward,
    /// Search for this text.
    Search(String),
    /// Show a problem's source line.
    ShowProblem(usize),
    /// Read a file.
    OpenPath(String),
    /// Parse text (a paste or a dropped file's contents).
    LoadText {
        /// Name used in messages.
        name: String,
        /// The text.
        text: Vec<u8>,
    },
    /// Run iptables-save on this machine.
    LoadLive,
    /// Show another dump read together with the current one (IPv4/IPv6).
    ShowSibling(usize),
    /// Show the bundled sample.
    LoadSample,
    /// Write the current view to a file (`.svg` or `.dot`).
    Export(String),
    /// Copy the selected chain's rules to the clipboard.
    CopyRules,
    /// Fit the whole graph into the canvas.
    Fit,
    /// Graph or flow.
    SetView(View),
    /// Open a dialog.
    Open(Dialog),
    /// Set the colour theme.
    Theme(egui::ThemePreference),
    /// A request of the Conntrack tab.
    Conntrack(crate::conntrack_state::CtAction),
    /// A request of the trace panel.
    Trace(crate::trace_state::TraceAction),
    /// A request of the Reach view.
    Reach(crate::reach_state::ReachAction),
    /// Select the rule of a lint finding (index in the lint report).
    ShowFinding(usize),
    /// A request of the Compare view.
    Compare(crate::compare_state::CompareAction),
    /// A request of the capture panel.
    Capture(crate::capture_state::CaptureAction),
}

/// The small windows the app can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialog {
    /// Path field with recent files.
    Open,
    /// A box to paste rules into.
    Paste,
    /// Export path.
    Export,
    /// Path of the ruleset to compare the loaded one with.
    Compare,
}
