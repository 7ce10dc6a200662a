//! Writing the current view to SVG or DOT.
//!
//! Interim: the library's SVG and DOT renderers are being written on
//! another branch; this writes the same positions the canvas shows.

use std::fmt::Write as _;

use crate::palette;
use crate::scene::{NodeStyle, Scene};

/// Escapes text for XML content and attributes.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a DOT double-quoted string.
pub fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The scene as a standalone SVG document.
pub fn to_svg(scene: &Scene, table: &str) -> String {
    let b = scene.bounds.expand(20.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="{:.0} {:.0} {:.0} {:.0}" width="{:.0}" height="{:.0}" font-family="DejaVu Sans, sans-serif">"#,
        b.left(),
        b.top(),
        b.width(),
        b.height(),
        b.width(),
        b.height()
    );
    let _ = writeln!(
        s,
        r#"<rect x="{:.0}" y="{:.0}" width="{:.0}" height="{:.0}" fill="white"/>"#,
        b.left(),
        b.top(),
        b.width(),
        b.height()
    );
    let _ = writeln!(
        s,
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##
    );
    for e in &scene.edges {
        let (Some(a), Some(z)) = (e.points.first(), e.points.last()) else {
            continue;
        };
        let c = palette::edge_colour(e.heat, false);
        let dash = if e.goto {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r##"<path d="M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="none" stroke="#{:02x}{:02x}{:02x}" stroke-width="{:.1}"{dash} marker-end="url(#arrow)"><title>{} rule(s), {} packets</title></path>"##,
            a.x,
            a.y,
            (a.x + z.x) / 2.0,
            a.y,
            (a.x + z.x) / 2.0,
            z.y,
            z.x,
            z.y,
            c.r(),
            c.g(),
            c.b(),
            1.0 + 3.0 * e.heat,
            e.rules,
            e.packets
        );
    }
    let fill = palette::table_colour(table, false);
    for n in &scene.nodes {
        let r = n.rect;
        let (f, w) = match n.style {
            NodeStyle::Builtin => (
                format!("#{:02x}{:02x}{:02x}", fill.r(), fill.g(), fill.b()),
                2.0,
            ),
            _ => ("white".to_string(), 1.0),
        };
        if n.style == NodeStyle::Group {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="4" fill="white" stroke="#5a5a5a"/>"##,
                r.left() + 6.0,
                r.top() + 6.0,
                r.width(),
                r.height()
            );
        }
        let _ = writeln!(
            s,
            r##"<g><title>{}</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="4" fill="{f}" stroke="#5a5a5a" stroke-width="{w}"/><text x="{:.1}" y="{:.1}" font-size="13">{}</text><text x="{:.1}" y="{:.1}" font-size="11" fill="#505050">{}</text></g>"##,
            xml_escape(&n.title),
            r.left(),
            r.top(),
            r.width(),
            r.height(),
            r.left() + 8.0,
            r.top() + 17.0,
            xml_escape(&n.title),
            r.left() + 8.0,
            r.top() + 33.0,
            xml_escape(&n.subtitle)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The scene as a Graphviz DOT graph (positions left to Graphviz).
pub fn to_dot(scene: &Scene, table: &str) -> String {
    let mut s = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"DejaVu Sans\"];\n",
        dot_escape(table)
    );
    let fill = palette::table_colour(table, false);
    for (i, n) in scene.nodes.iter().enumerate() {
        let style = match n.style {
            NodeStyle::Builtin => format!(
                ", style=\"filled,bold\", fillcolor=\"#{:02x}{:02x}{:02x}\"",
                fill.r(),
                fill.g(),
                fill.b()
            ),
            NodeStyle::Group => ", peripheries=2".to_string(),
            NodeStyle::User => String::new(),
        };
        let _ = writeln!(
            s,
            "  n{i} [label=\"{}\\n{}\"{style}];",
            dot_escape(&n.title),
            dot_escape(&n.subtitle)
        );
    }
    for e in &scene.edges {
        let style = if e.goto { ", style=dashed" } else { "" };
        let _ = writeln!(
            s,
            "  n{} -> n{} [penwidth={:.1}{style}];",
            e.from,
            e.to,
            1.0 + 3.0 * e.heat
        );
    }
    s.push_str("}\n");
    s
}

/// Writes the scene to `path`, choosing the format by extension.
pub fn write(scene: &Scene, table: &str, path: &str) -> Result<String, String> {
    let text = if path.ends_with(".dot") || path.ends_with(".gv") {
        to_dot(scene, table)
    } else if path.ends_with(".svg") {
        to_svg(scene, table)
    } else {
        return Err(format!("{path}: choose a name ending in .svg or .dot"));
    };
    std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
    Ok(format!("wrote {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_comments_are_escaped() {
        assert_eq!(
            xml_escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
        assert_eq!(dot_escape("a\"b\\c\nd"), "a\\\"b\\\\c d");
    }

    #[test]
    fn svg_and_dot_of_the_sample() {
        let mut st = crate::state::AppState::default();
        st.load("s", include_bytes!("../tests/fixtures/small-host.rules"))
            .expect("loads");
        let scene = st.scene.as_ref().expect("scene");
        let svg = to_svg(scene, "filter");
        assert!(svg.starts_with("<svg") && svg.contains(">ssh-allow</text>"));
        let dot = to_dot(scene, "filter");
        assert!(dot.contains("rankdir=LR") && dot.contains("->"));
    }
}
