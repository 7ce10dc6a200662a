//! What is remembered between runs: only settings, never loaded data.
//! (Window size and position are remembered by eframe itself.)

use serde::{Deserialize, Serialize};

/// Most recent files kept.
pub const MAX_RECENT: usize = 10;

/// Colour theme choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ThemeChoice {
    /// Follow the desktop.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl ThemeChoice {
    /// The egui preference for this choice.
    pub fn preference(self) -> egui::ThemePreference {
        match self {
            ThemeChoice::System => egui::ThemePreference::System,
            ThemeChoice::Light => egui::ThemePreference::Light,
            ThemeChoice::Dark => egui::ThemePreference::Dark,
        }
    }

    /// The choice for an egui preference.
    pub fn from_preference(p: egui::ThemePreference) -> Self {
        match p {
            egui::ThemePreference::System => ThemeChoice::System,
            egui::ThemePreference::Light => ThemeChoice::Light,
            egui::ThemePreference::Dark => ThemeChoice::Dark,
        }
    }
}

/// Persisted settings; unknown or missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Recently opened files, newest first.
    pub recent: Vec<String>,
    /// Colour theme.
    pub theme: ThemeChoice,
    /// Show the problems panel.
    pub show_problems: bool,
}

impl Settings {
    /// Storage key.
    pub const KEY: &'static str = "iptviz-gui-settings";

    /// Puts `path` first in the recent list.
    pub fn remember(&mut self, path: &str) {
        self.recent.retain(|p| p != path);
        self.recent.insert(0, path.to_string());
        self.recent.truncate(MAX_RECENT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_is_newest_first_without_duplicates() {
        let mut s = Settings::default();
        for p in ["a", "b", "a"] {
            s.remember(p);
        }
        assert_eq!(s.recent, ["a", "b"]);
        for i in 0..20 {
            s.remember(&i.to_string());
        }
        assert_eq!(s.recent.len(), MAX_RECENT);
    }
}
