//! kube-proxy awareness: service labels decoded from rule comments.

use crate::model::Rule;

/// Chain prefixes kube-proxy gives per-service and per-endpoint chains.
const KUBE_PREFIXES: [&str; 6] = [
    "KUBE-SVC-",
    "KUBE-SEP-",
    "KUBE-EXT-",
    "KUBE-SVL-",
    "KUBE-FW-",
    "KUBE-XLB-",
];

/// True for a kube-proxy per-service or per-endpoint chain name.
pub fn is_kube_chain(name: &str) -> bool {
    KUBE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The `namespace/name:port` of the first rule whose comment starts with
/// one (kube-proxy writes e.g. `"default/kubernetes:https cluster IP"`).
pub fn service_label<'a>(rules: impl Iterator<Item = &'a Rule>) -> Option<String> {
    rules
        .filter_map(|r| r.comment())
        .find_map(|c| decode(&c).map(str::to_string))
}

/// The leading `ns/name[:port]` word of a kube-proxy comment.
fn decode(comment: &str) -> Option<&str> {
    let word = comment.split_whitespace().next()?;
    let (ns, rest) = word.split_once('/')?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
    };
    (valid(ns) && valid(rest) && !ns.contains(':')).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_service_comments() {
        assert_eq!(
            decode("default/kubernetes:https cluster IP"),
            Some("default/kubernetes:https")
        );
        assert_eq!(
            decode("kube-system/kube-dns:dns -> 10.0.0.5:53"),
            Some("kube-system/kube-dns:dns")
        );
        assert_eq!(decode("kubernetes service portals"), None);
        assert!(is_kube_chain("KUBE-SEP-ABC"));
        assert!(!is_kube_chain("KUBE-SERVICES"));
    }
}
