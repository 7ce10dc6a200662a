//! Colours of the canvas.
//!
//! Interim: the shared palette (`iptviz::render::style`) is being written on
//! another branch. Everything colour-related goes through this file so the
//! switch is one edit.

use egui::Color32;

/// Fill of a built-in chain of `table` (calm, distinct per table).
pub fn table_colour(table: &str, dark: bool) -> Color32 {
    let (l, d) = match table {
        "raw" => ((0xd9, 0xc8, 0xa9), (0x6b, 0x5a, 0x3c)),
        "mangle" => ((0xc9, 0xbf, 0xe0), (0x54, 0x4a, 0x78)),
        "nat" => ((0xe6, 0xc0, 0xd8), (0x76, 0x45, 0x68)),
        "filter" => ((0xb8, 0xd8, 0xe8), (0x2f, 0x5d, 0x78)),
        "security" => ((0xc4, 0xdd, 0xc0), (0x3f, 0x66, 0x44)),
        _ => ((0xd6, 0xd6, 0xd6), (0x55, 0x55, 0x55)),
    };
    let (r, g, b) = if dark { d } else { l };
    Color32::from_rgb(r, g, b)
}

/// Colour of a verdict or target name (ACCEPT green, DROP/REJECT red, ...).
pub fn verdict_colour(target: &str, dark: bool) -> Color32 {
    let pick = |light: (u8, u8, u8), darkc: (u8, u8, u8)| {
        let (r, g, b) = if dark { darkc } else { light };
        Color32::from_rgb(r, g, b)
    };
    match target {
        "ACCEPT" => pick((0x1e, 0x7d, 0x32), (0x6c, 0xd0, 0x7e)),
        "DROP" | "REJECT" => pick((0xc6, 0x28, 0x28), (0xff, 0x7a, 0x7a)),
        "RETURN" => pick((0x15, 0x65, 0xc0), (0x7a, 0xb4, 0xff)),
        "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT" | "NETMAP" => {
            pick((0x7b, 0x1f, 0xa2), (0xd0, 0x8c, 0xf0))
        }
        "LOG" | "NFLOG" | "QUEUE" | "NFQUEUE" => pick((0x61, 0x61, 0x61), (0xa8, 0xa8, 0xa8)),
        _ => pick((0x37, 0x47, 0x4f), (0xcf, 0xd8, 0xdc)),
    }
}

/// Edge colour: grey at no traffic, towards orange/red with heat in 0..=1.
pub fn edge_colour(heat: f32, dark: bool) -> Color32 {
    let cold = if dark {
        Color32::from_gray(130)
    } else {
        Color32::from_gray(120)
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
