//! Colours of the canvas, taken from the library's shared style
//! (`iptviz::render::style`) so that the app and the SVG look like one
//! product. Dark mode uses deeper tones of the same hues.

use egui::Color32;
use iptviz::graph::Verdict;
use iptviz::render::style::{self, Rgb};

fn rgb((r, g, b): Rgb) -> Color32 {
    Color32::from_rgb(r, g, b)
}

/// The same hue, darkened for a dark background.
fn deepen((r, g, b): Rgb) -> Color32 {
    let d = |c: u8| (c as f32 * 0.5) as u8;
    Color32::from_rgb(d(r), d(g), d(b))
}

/// The same hue, lightened for text on a dark background.
fn lighten((r, g, b): Rgb) -> Color32 {
    let l = |c: u8| (c as u16 + (255 - c as u16) * 45 / 100) as u8;
    Color32::from_rgb(l(r), l(g), l(b))
}

/// Fill of a built-in chain of `table`.
pub fn table_colour(table: &str, dark: bool) -> Color32 {
    if dark {
        deepen(style::table_fill(table))
    } else {
        rgb(style::table_fill(table))
    }
}

/// Outline of a built-in chain of `table`.
pub fn table_stroke(table: &str, dark: bool) -> Color32 {
    if dark {
        lighten(style::table_stroke(table))
    } else {
        rgb(style::table_stroke(table))
    }
}

/// Colour of a verdict or target name (ACCEPT green, DROP/REJECT red, ...).
pub fn verdict_colour(target: &str, dark: bool) -> Color32 {
    let c = style::verdict_colour(Verdict::of(target));
    if dark { lighten(c) } else { rgb(c) }
}

/// A library fill colour (`style::NodeStyle::fill`) for the theme: paper
/// becomes the dark canvas, other fills deeper tones of their hue.
pub fn fill(c: Rgb, dark: bool) -> Color32 {
    match (dark, c == style::PAPER) {
        (false, _) => rgb(c),
        (true, true) => Color32::from_gray(38),
        (true, false) => deepen(c),
    }
}

/// A library line or text colour for the theme: ink becomes light grey on
/// dark, other colours lighter tones of their hue; white text on a strong
/// fill stays white.
pub fn ink(c: Rgb, dark: bool) -> Color32 {
    if !dark || c == style::PAPER {
        rgb(c)
    } else if c == style::INK {
        Color32::from_gray(230)
    } else if c == style::MUTED {
        Color32::from_gray(170)
    } else {
        lighten(c)
    }
}

/// Edge colour: grey at no traffic, towards orange with heat in 0..=1.
pub fn edge_colour(heat: f32, dark: bool) -> Color32 {
    let cold = if dark {
        Color32::from_gray(130)
    } else {
        rgb(style::MUTED)
    };
    if heat <= 0.0 {
        return cold;
    }
    let hot = Color32::from_rgb(0xe6, 0x51, 0x00);
    lerp(cold, hot, heat.clamp(0.0, 1.0))
}

/// Highlight of search hits.
pub fn hit_colour() -> Color32 {
    Color32::from_rgb(0xff, 0xb3, 0x00)
}

/// Outline of the selected chain.
pub fn selected_colour(dark: bool) -> Color32 {
    if dark {
        Color32::from_rgb(0x4f, 0xc3, 0xf7)
    } else {
        Color32::from_rgb(0x01, 0x57, 0x9b)
    }
}

fn lerp(a: Color32, b: Color32, t: f32) -> Color32 {
    let m = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round() as u8;
    Color32::from_rgb(m(a.r(), b.r()), m(a.g(), b.g()), m(a.b(), b.b()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn light_mode_is_the_library_palette() {
        let (r, g, b) = style::table_fill("nat");
        assert_eq!(table_colour("nat", false), Color32::from_rgb(r, g, b));
        assert_ne!(table_colour("nat", true), table_colour("nat", false));
        assert_ne!(
            verdict_colour("ACCEPT", false),
            verdict_colour("DROP", false)
        );
        assert_eq!(fill(style::PAPER, false), Color32::WHITE);
        assert_eq!(ink(style::PAPER, true), Color32::WHITE);
        assert_ne!(ink(style::INK, true), ink(style::INK, false));
    }
}
