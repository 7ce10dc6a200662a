//! The fleet overview as SVG: one cell per node in a grid, coloured by the
//! group of identical rules it belongs to, outliers outlined, a legend below.

use std::fmt::Write as _;

use super::FleetReport;
use crate::render::style::{FONT_FAMILY, INK, MUTED, PAPER, hex};
use crate::render::xml::Escaped;

/// Fills for groups 1, 2, ...: the largest group calm, the others loud and
/// far apart from one another.
const GROUP_FILLS: [(u8, u8, u8); 10] = [
    (0xd1, 0xe7, 0xdd),
    (0xfd, 0xba, 0x74),
    (0x93, 0xc5, 0xfd),
    (0xf9, 0xa8, 0xd4),
    (0xfd, 0xe0, 0x47),
    (0xc4, 0xb5, 0xfd),
    (0x86, 0xef, 0xac),
    (0xfc, 0xa5, 0xa5),
    (0x67, 0xe8, 0xf9),
    (0xd9, 0xf9, 0x9d),
];
/// Fill of a node whose dump could not be read.
const UNREADABLE: (u8, u8, u8) = (0xe5, 0xe7, 0xeb);
/// Outline of an outlier.
const OUTLIER: (u8, u8, u8) = (0xdc, 0x26, 0x26);

/// Fill of group `id` (1-based); groups past the palette repeat it.
pub fn group_fill(id: usize) -> (u8, u8, u8) {
    if id == 0 {
        UNREADABLE
    } else {
        GROUP_FILLS[(id - 1) % GROUP_FILLS.len()]
    }
}

const CELL_W: f64 = 150.0;
const CELL_H: f64 = 46.0;
const GAP: f64 = 6.0;
const MARGIN: f64 = 16.0;
const NAME_CHARS: usize = 20;

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// Draws the overview.
pub fn svg(r: &FleetReport) -> String {
    let n = r.nodes.len().max(1);
    let cols = ((n as f64 * 1.6).sqrt().ceil() as usize).clamp(1, 12);
    let rows = n.div_ceil(cols);
    let grid_w = cols as f64 * (CELL_W + GAP) - GAP;
    let title_h = 34.0;
    let legend_rows = r.groups.len() + 2;
    let legend_h = legend_rows as f64 * 18.0 + 10.0;
    let width = (grid_w + 2.0 * MARGIN).max(520.0);
    let height = title_h + rows as f64 * (CELL_H + GAP) + legend_h + 2.0 * MARGIN;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="{FONT_FAMILY}">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="{}"/>"#,
        hex(PAPER)
    );
    let _ = write!(
        s,
        r#"<text x="{MARGIN}" y="{:.0}" font-size="15" font-weight="bold" fill="{}">{}</text>"#,
        MARGIN + 12.0,
        hex(INK),
        Escaped(&format!(
            "fleet: {} nodes, {} groups of identical rules, {} drift sets, {} outliers",
            r.nodes.len(),
            r.groups.len(),
            r.drift.len(),
            r.outliers.len()
        ))
    );
    let top = MARGIN + title_h;
    for (i, node) in r.nodes.iter().enumerate() {
        let x = MARGIN + (i % cols) as f64 * (CELL_W + GAP);
        let y = top + (i / cols) as f64 * (CELL_H + GAP);
        let (stroke, sw) = if node.outlier {
            (OUTLIER, 3.0)
        } else {
            (MUTED, 1.0)
        };
        let detail = match &node.unreadable {
            Some(_) => "unreadable".to_string(),
            None => format!("group {} · {} rules", node.group, node.rules),
        };
        let mut tip = format!("{}\n{}", node.name, detail);
        if let Some(why) = &node.unreadable {
            let _ = write!(tip, "\n{why}");
        }
        if node.errors + node.warnings > 0 {
            let _ = write!(tip, "\n{} errors, {} warnings", node.errors, node.warnings);
        }
        if let Some(c) = &node.conntrack {
            let _ = write!(tip, "\nconntrack: {} entries", c.entries);
            if let Some(p) = c.percent {
                let _ = write!(tip, " ({p:.1}% full)");
            }
        }
        let _ = write!(
            s,
            r#"<g><title>{}</title><rect x="{x:.1}" y="{y:.1}" width="{CELL_W}" height="{CELL_H}" rx="5" fill="{}" stroke="{}" stroke-width="{sw}"/>"#,
            Escaped(&tip),
            hex(group_fill(node.group)),
            hex(stroke)
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" fill="{}">{}</text>"#,
            x + 8.0,
            y + 18.0,
            hex(INK),
            Escaped(&short(&node.name, NAME_CHARS))
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" fill="{}">{}</text></g>"#,
            x + 8.0,
            y + 35.0,
            hex(MUTED),
            Escaped(&detail)
        );
    }
    let mut y = top + rows as f64 * (CELL_H + GAP) + 12.0;
    for g in &r.groups {
        let _ = write!(
            s,
            r#"<rect x="{MARGIN}" y="{:.1}" width="14" height="12" fill="{}" stroke="{}"/>"#,
            y - 10.0,
            hex(group_fill(g.id)),
            hex(MUTED)
        );
        let what = if g.id == 1 {
            "largest".to_string()
        } else if g.order_only {
            "same rules, other order".to_string()
        } else {
            format!("{} missing, {} extra against group 1", g.missing, g.extra)
        };
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{y:.1}" font-size="11" fill="{}">{}</text>"#,
            MARGIN + 20.0,
            hex(INK),
            Escaped(&format!(
                "group {}: {} node{} ({what})",
                g.id,
                g.nodes.len(),
                if g.nodes.len() == 1 { "" } else { "s" }
            ))
        );
        y += 18.0;
    }
    let _ = write!(
        s,
        r#"<rect x="{MARGIN}" y="{:.1}" width="14" height="12" fill="{}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{y:.1}" font-size="11" fill="{}">outlier (a small group that differs from group 1)</text>"#,
        y - 10.0,
        hex(PAPER),
        hex(OUTLIER),
        MARGIN + 20.0,
        hex(INK)
    );
    y += 18.0;
    let _ = write!(
        s,
        r#"<rect x="{MARGIN}" y="{:.1}" width="14" height="12" fill="{}" stroke="{}"/><text x="{:.1}" y="{y:.1}" font-size="11" fill="{}">unreadable dump</text>"#,
        y - 10.0,
        hex(UNREADABLE),
        hex(MUTED),
        MARGIN + 20.0,
        hex(INK)
    );
    s.push_str("</svg>\n");
    s
}
