//! Text metrics: how big a label is drawn, so that layout sizes boxes for
//! the text the renderers put in them.

/// Size of the first line of a node (its name), in px.
pub const NAME_SIZE: f64 = 13.0;
/// Size of the other lines, rule rows and edge labels, in px.
pub const TEXT_SIZE: f64 = 11.0;
/// Advance width of one character, in em (DejaVu Sans Mono: 1233/2048).
pub const CHAR_EM: f64 = 0.602;
/// Line height as a multiple of the font size.
pub const LINE_FACTOR: f64 = 1.25;
/// Inner padding of a node box, in px.
pub const PAD: f64 = 6.0;

/// Size of an SVG's title, in px.
pub const TITLE_SIZE: f64 = 15.0;
/// Narrowest SVG page, in px: room for a legend row.
pub const MIN_PAGE_WIDTH: f64 = 760.0;

/// Width of an SVG page whose drawing is `drawing` px wide: wide enough for
/// the title and the legend too.
pub fn page_width(title: &str, drawing: f64) -> f64 {
    let title_w = text_width(title, TITLE_SIZE) * 1.1 + 32.0;
    drawing.max(MIN_PAGE_WIDTH).max(title_w.ceil())
}

/// Width of `s` in px at `size`: wide (East Asian) characters count double.
pub fn text_width(s: &str, size: f64) -> f64 {
    let cols: usize = s
        .chars()
        .map(|c| {
            let u = c as u32;
            if (0x1100..=0x115f).contains(&u)
                || (0x2e80..=0xa4cf).contains(&u)
                || (0xac00..=0xd7a3).contains(&u)
                || (0xf900..=0xfaff).contains(&u)
                || (0xfe30..=0xfe4f).contains(&u)
                || (0xff00..=0xff60).contains(&u)
                || (0x1f300..=0x1faff).contains(&u)
                || (0x20000..=0x3fffd).contains(&u)
            {
                2
            } else {
                1
            }
        })
        .sum();
    cols as f64 * size * CHAR_EM
}
