//! XML escaping, the one place that knows which characters SVG text, SVG
//! attributes and graphviz's HTML-like labels must not carry as they are.

/// Appends `c` to `out` as XML 1.0 allows it in content and in quoted
/// attribute values: the five markup characters as entities, newline and
/// tab kept, the other characters XML 1.0 forbids (C0 controls, U+FFFE,
/// U+FFFF) dropped.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        '\n' | '\t' => out.push(c),
        c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
        c => out.push(c),
    }
}

/// `s` escaped for XML content and attribute values (see [`push_escaped`]).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            escape("</text><script>alert(1)</script>"),
            "&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(escape("a\u{1}b&\"'"), "ab&amp;&quot;&#39;");
        assert_eq!(escape("a\nb\tc\u{fffe}"), "a\nb\tc");
    }
}
