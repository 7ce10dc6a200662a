//! Graphviz DOT, written by hand so that every string from the dump is
//! escaped for DOT (petgraph's `Dot` is not safe for arbitrary labels).

use std::fmt::Write as _;

use super::style::{self, Dash, Shape, hex};
use crate::diagram::View;

/// Longest quoted string written, in bytes: graphviz refuses strings over
/// 16,384 characters (a 17,000-character comment, a 4,000-port multiport
/// list). Longer text is cut with an ellipsis; SVG and JSON keep it whole.
pub const MAX_DOT_STRING: usize = 16_000;

/// Longest text of one row of a rule table (an HTML-like label holds many).
pub const MAX_DOT_ROW: usize = 2_000;

/// Longest HTML-like label, in bytes, the rows of a chain's rule table
/// included; rows past it are counted instead of written.
pub const MAX_DOT_HTML: usize = 15_000;

const ELLIPSIS: &str = "\u{2026}";

/// Cuts escaped text to at most `max` bytes (an ellipsis included), never
/// inside a character, a backslash escape or an HTML entity.
fn clip(mut out: String, max: usize) -> String {
    if out.len() <= max {
        return out;
    }
    let mut cut = max.saturating_sub(ELLIPSIS.len());
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &out.as_bytes()[..cut];
    let slashes = head.iter().rev().take_while(|&&b| b == b'\\').count();
    if slashes % 2 == 1 {
        cut -= 1;
    }
    if let Some(amp) = out[..cut].rfind('&')
        && !out[amp..cut].contains(';')
    {
        cut = amp;
    }
    out.truncate(cut);
    out.push_str(ELLIPSIS);
    out
}

/// Escapes text for a DOT double-quoted string, cut to [`MAX_DOT_STRING`].
/// Backslashes are doubled so that dump text can never form graphviz
/// escapes like `\N` or `\l`.
pub fn escape(s: &str) -> String {
    clip(escape_full(s), MAX_DOT_STRING)
}

fn escape_full(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_DOT_STRING) + 2);
    for c in s.chars() {
        if out.len() > MAX_DOT_STRING {
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a graphviz HTML-like label, cut to [`MAX_DOT_ROW`].
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_DOT_ROW));
    for c in s.chars() {
        if out.len() > MAX_DOT_ROW {
            break;
        }
        super::xml::push_html_label(&mut out, c);
    }
    clip(out, MAX_DOT_ROW)
}

/// `#rrggbb`, or `#rrggbbaa` when not opaque (graphviz reads both).
fn rgba(c: style::Rgb, opacity: f64) -> String {
    if opacity >= 1.0 {
        hex(c).to_string()
    } else {
        format!(
            "{}{:02x}",
            hex(c),
            (opacity.clamp(0.0, 1.0) * 255.0).round() as u8
        )
    }
}

/// The DOT text of a view (graphviz does the layout).
pub fn dot(view: &View) -> String {
    let mut out = String::with_capacity(200 * (view.nodes.len() + view.edges.len()) + 512);
    let font = "DejaVu Sans Mono";
    let _ = writeln!(out, "digraph iptviz {{");
    let _ = writeln!(
        out,
        "  graph [rankdir=TB, fontname=\"{font}\", fontsize=14, labelloc=t, label=\"{}\", nodesep=0.3, ranksep=0.5];",
        escape(&view.title)
    );
    let _ = writeln!(out, "  node [fontname=\"{font}\", fontsize=11];");
    let _ = writeln!(out, "  edge [fontname=\"{font}\", fontsize=9];");
    let lit_view = view.has_highlight();
    // Rows written per node: edges from rows cut off leave the last one.
    let mut rows_written = vec![usize::MAX; view.nodes.len()];
    for (i, n) in view.nodes.iter().enumerate() {
        let s = style::view_node_style(n);
        let dim = style::opacity(lit_view, n.highlight);
        let mut styles: Vec<&str> = vec!["filled"];
        if s.bold {
            styles.push("bold");
        }
        if s.dashed {
            styles.push("dashed");
        }
        let shape = match s.shape {
            Shape::Box => "box",
            Shape::Rounded | Shape::Pill => {
                styles.push("rounded");
                "box"
            }
            Shape::Stack => "box3d",
            Shape::Ellipse => "ellipse",
        };
        let mut common = format!(
            "fillcolor=\"{}\", color=\"{}\", fontcolor=\"{}\", tooltip=\"{}\"",
            rgba(s.fill, dim),
            rgba(s.stroke, dim),
            rgba(s.text, dim),
            escape(&n.title)
        );
        if n.highlight {
            let _ = write!(common, ", penwidth={:.1}", s.stroke_width);
        }
        if n.rows.is_empty() {
            let _ = writeln!(
                out,
                "  n{i} [label=\"{}\", shape={shape}, style=\"{}\", {common}];",
                escape(&n.lines.join("\n")),
                styles.join(",")
            );
        } else {
            let mut html = String::from(
                "<<TABLE BORDER=\"1\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"2\">",
            );
            for (li, l) in n.lines.iter().enumerate() {
                if li == 0 {
                    let _ = write!(html, "<TR><TD><B>{}</B></TD></TR>", escape_html(l));
                } else {
                    let _ = write!(html, "<TR><TD>{}</TD></TR>", escape_html(l));
                }
            }
            for (ri, r) in n.rows.iter().enumerate() {
                if html.len() > MAX_DOT_HTML {
                    let _ = write!(
                        html,
                        "<TR><TD PORT=\"r{ri}\" ALIGN=\"LEFT\"><I>{} more rules</I></TD></TR>",
                        n.rows.len() - ri
                    );
                    rows_written[i] = ri;
                    break;
                }
                let text = escape_html(&r.text);
                let text = if r.highlight {
                    format!("<B>{text}</B>")
                } else {
                    text
                };
                let _ = write!(
                    html,
                    "<TR><TD PORT=\"r{ri}\" ALIGN=\"LEFT\">{text}</TD></TR>"
                );
            }
            html.push_str("</TABLE>>");
            let _ = writeln!(
                out,
                "  n{i} [label={html}, shape=plain, style=\"{}\", {common}];",
                styles.join(",")
            );
        }
    }
    // Framed views (a traced path) keep their frames as graphviz clusters.
    for (k, f) in view.frames.iter().enumerate() {
        if f.label.is_empty() || f.nodes.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  subgraph cluster_{k} {{\n    label=\"{}\"; labeljust=l; style=\"rounded,filled\"; fillcolor=\"{}\"; color=\"{}\"; fontcolor=\"{}\";",
            escape(&f.label),
            hex(style::cluster_fill(&f.table)),
            hex(style::table_stroke(&f.table)),
            hex(style::table_stroke(&f.table))
        );
        let members: Vec<String> = f.nodes.iter().map(|i| format!("n{i};")).collect();
        let _ = writeln!(out, "    {}\n  }}", members.join(" "));
    }
    // The hook-order view: each hook a cluster, as the SVG frames them
    // (its boxes are named by table only).
    for (hook, nodes) in view.flow.iter().flat_map(|p| &p.hooks) {
        if nodes.is_empty() {
            continue;
        }
        let name = hook.chain();
        let _ = write!(
            out,
            "  subgraph cluster_{name} {{ label=\"{name}\"; style=\"rounded\"; color=\"{}\";",
            hex(style::MUTED)
        );
        for n in nodes {
            let _ = write!(out, " n{n};");
        }
        out.push_str(" }\n");
    }
    for e in &view.edges {
        let s = style::view_edge_style(view, e);
        let dim = style::opacity(lit_view, e.highlight);
        let style = match s.dash {
            Dash::Solid => "solid",
            Dash::Dashed => "dashed",
            Dash::Dotted => "dotted",
        };
        let port = e
            .from_row
            .map(|r| {
                format!(
                    ":r{}:e",
                    r.min(rows_written.get(e.from).copied().unwrap_or(r))
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  n{}{port} -> n{} [label=\"{}\", style={style}, color=\"{}\", penwidth={:.1}, tooltip=\"{}\"{}{}];",
            e.from,
            e.to,
            escape(&e.label),
            rgba(s.colour, dim),
            s.width * e.weight,
            escape(&e.title),
            if crate::layout::is_back(e.kind) {
                ", constraint=false"
            } else {
                ""
            },
            if dim < 1.0 {
                format!(", fontcolor=\"{}\"", rgba(style::INK, dim))
            } else {
                String::new()
            }
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape("a\"b\\N\nc"), "a\\\"b\\\\N\\nc");
        assert_eq!(escape_html("<b>&"), "&lt;b&gt;&amp;");
    }
}
