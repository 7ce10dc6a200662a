//! A fast layered (Sugiyama-style) layout for big chain graphs: longest-path
//! ranks, dummy nodes on long edges, a few barycentre sweeps against
//! crossings, balanced coordinates, polyline edges. Near-linear in the size
//! of the graph, so 40,000 chains take well under a second.

use std::collections::VecDeque;

use super::{
    EdgePath, Engine, Grid, Layout, Lines, MAX_LABELLED_EDGES, NodeBox, Point, is_back, label_rect,
    node_size, normalise, row_centre, shift_edge, spread_labels_along, sub_view,
};
use crate::diagram::metrics::{TEXT_SIZE, text_width};
use crate::diagram::{View, ViewEdge};

/// Horizontal gap between boxes.
const GAP: f64 = 20.0;
/// Horizontal gap next to an edge passing through a layer.
const DUMMY_W: f64 = 10.0;
/// Vertical gap between layers; a gap grows where edge labels do not fit.
const RANK_GAP: f64 = 40.0;
/// The most a gap grows to where edge labels crowd, and by how much at a
/// time (about one label's height).
const RANK_GAP_MAX: f64 = 96.0;
const WIDEN_STEP: f64 = 16.0;
/// Space between an edge label and its line.
const LABEL_GAP: f64 = 3.0;
/// Barycentre sweeps (down, up, down, ...) at most; the order with the
/// fewest crossings seen is kept, and sweeping stops once several in a row
/// found none fewer.
const SWEEPS: usize = 24;
/// Sweeps for graphs of more than [`BIG`] layout nodes (the time matters
/// more than the last crossings there: they keep the old plain sweeps).
const SWEEPS_BIG: usize = 6;
/// Sweeps in a row without fewer crossings before giving up.
const STALE: usize = 4;
/// Layout nodes (boxes and dummies) above which a graph is big.
const BIG: usize = 2_000;
/// Layout nodes up to which neighbours in a layer are also swapped
/// pairwise where that removes crossings (the cost grows with the degrees).
const TRANSPOSE_MAX: usize = 2_000;
/// Coordinate balancing rounds.
const ROUNDS: usize = 6;

/// Longest-path ranks along `dir` edges; a cycle (which the kernel forbids,
/// but a hand-edited dump may have) is broken at its lowest-numbered node.
fn ranks(n: usize, dir: &[(usize, usize)]) -> Vec<usize> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for &(u, v) in dir {
        if u != v {
            out[u].push(v);
            indeg[v] += 1;
        }
    }
    let mut rank = vec![0usize; n];
    let mut done = vec![false; n];
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut next_forced = 0;
    let mut processed = 0;
    while processed < n {
        let u = match queue.pop_front() {
            Some(u) => u,
            None => {
                while done[next_forced] {
                    next_forced += 1;
                }
                next_forced
            }
        };
        if done[u] {
            continue;
        }
        done[u] = true;
        processed += 1;
        for &v in &out[u] {
            if done[v] {
                continue;
            }
            rank[v] = rank[v].max(rank[u] + 1);
            indeg[v] -= 1;
            if indeg[v] == 0 {
                queue.push_back(v);
            }
        }
    }
    rank
}

/// Graphs up to this many nodes get wide layers wrapped into several rows.
const WRAP_MAX_NODES: usize = 3000;

/// Splits layers wider than about 1.5 sqrt(k) nodes (or `cap`, if fewer)
/// into rows of that many (in the given order), so that a chain calling 90 others draws as a block
/// rather than a strip many screens wide. Every edge still points down.
/// `None` when nothing needs wrapping.
fn wrap_wide(
    rank: &[usize],
    pos: &[f64],
    dir: &[(usize, usize)],
    cap: Option<usize>,
) -> Option<Vec<usize>> {
    if rank.len() > WRAP_MAX_NODES {
        return None;
    }
    let layers = rank.iter().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (v, &r) in rank.iter().enumerate() {
        members[r].push(v);
    }
    let per_row = |k: usize| {
        let row = ((k as f64).sqrt() * 1.5).ceil().max(10.0) as usize;
        cap.map_or(row, |c| row.min(c))
    };
    if members.iter().all(|m| m.len() <= per_row(m.len())) {
        return None;
    }
    let mut out = rank.to_vec();
    let mut offset = 0;
    for m in &mut members {
        m.sort_by(|a, b| pos[*a].total_cmp(&pos[*b]).then(a.cmp(b)));
        let k = m.len();
        let row = per_row(k);
        for (i, &v) in m.iter().enumerate() {
            out[v] = offset + i / row;
        }
        offset += k.div_ceil(row).max(1);
    }
    // Sinks (targets, empty chains) go right below their lowest caller
    // rather than below the whole wrapped band.
    let mut has_out = vec![false; rank.len()];
    let mut sink_rank: Vec<Option<usize>> = vec![None; rank.len()];
    for &(u, v) in dir {
        if u != v {
            has_out[u] = true;
        }
    }
    for &(u, v) in dir {
        if u != v && !has_out[v] {
            let r = out[u] + 1;
            sink_rank[v] = Some(sink_rank[v].map_or(r, |s| s.max(r)));
        }
    }
    for (v, r) in sink_rank.into_iter().enumerate() {
        if let Some(r) = r {
            out[v] = r;
        }
    }
    // With a cap, rows the sinks joined are split again: no edge joins two
    // boxes of one row, so rows split in place keep every edge pointing
    // down.
    if let Some(c) = cap {
        let rows = out.iter().max().map_or(0, |m| m + 1);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); rows];
        for (v, &r) in out.iter().enumerate() {
            members[r].push(v);
        }
        let mut offset = 0;
        for m in &mut members {
            m.sort_by(|a, b| pos[*a].total_cmp(&pos[*b]).then(a.cmp(b)));
            for (i, &v) in m.iter().enumerate() {
                out[v] = offset + i / c;
            }
            offset += m.len().div_ceil(c);
        }
    }
    Some(out)
}

/// Callers above this many make a chain a hub: it goes below all of them
/// rather than pulling them into its slice.
const HUB_CALLERS: usize = 8;

/// For graphs too big for [`wrap_wide`]: cuts a drawing much wider than
/// high into vertical slices (by each node's place across its layer in the
/// crossing-reduced order) and stacks the slices top to bottom, every edge
/// still pointing down. A chain goes in the first slice of what it calls
/// (hubs called from many places aside), then below every caller; the few
/// edges between slices run down shared trunks. `None` when the drawing
/// is not too wide or too small to need it.
fn slice_wide(
    base: &[usize],
    o: &Ordered,
    dir: &[(usize, usize)],
    sizes: &[(f64, f64)],
) -> Option<Vec<usize>> {
    let n = base.len();
    if n <= WRAP_MAX_NODES {
        return None;
    }
    // Each node's left edge across its layer when packed, and the layers'
    // widths and heights.
    let mut at = vec![0.0f64; n];
    let mut widths = vec![0.0f64; o.layers.len()];
    let mut height = 0.0;
    for (r, l) in o.layers.iter().enumerate() {
        let mut cur = 0.0;
        let mut tall: f64 = 0.0;
        for &v in l {
            if v < n {
                at[v] = cur + o.w[v] / 2.0;
                tall = tall.max(sizes[v].1);
            }
            cur += o.w[v] + o.gap[v];
        }
        widths[r] = cur;
        height += tall + RANK_GAP;
    }
    let wide = widths.iter().copied().fold(0.0, f64::max);
    let k0 = (wide / (height * SCREEN)).sqrt().ceil() as usize;
    if k0 < 2 {
        return None;
    }
    let (mut succ, mut pred) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for &(u, v) in dir {
        if u != v {
            succ[u].push(v);
            pred[v].push(u);
        }
    }
    let mut by_rank: Vec<usize> = (0..n).collect();
    by_rank.sort_by_key(|&v| std::cmp::Reverse(base[v]));
    let layers = o.layers.len();
    let cut = |k: usize| {
        let mut slice: Vec<usize> = (0..n)
            .map(|v| {
                let f = at[v] / widths[base[v]].max(1.0);
                ((f * k as f64) as usize).min(k - 1)
            })
            .collect();
        for &v in &by_rank {
            let first = succ[v]
                .iter()
                .filter(|&&s| pred[s].len() <= HUB_CALLERS)
                .map(|&s| slice[s])
                .min();
            if let Some(f) = first {
                slice[v] = f;
            }
        }
        for &v in by_rank.iter().rev() {
            if let Some(m) = pred[v].iter().map(|&p| slice[p]).max() {
                // What calls nothing goes right with its (last) caller.
                slice[v] = if succ[v].is_empty() {
                    m
                } else {
                    slice[v].max(m)
                };
            }
        }
        let mut key: Vec<usize> = (0..n).map(|v| slice[v] * layers + base[v]).collect();
        // Drop the layers no node uses.
        let mut used: Vec<usize> = key.clone();
        used.sort_unstable();
        used.dedup();
        for k in &mut key {
            *k = used.binary_search(k).unwrap_or(0);
        }
        // The shape this gives, boxes only.
        let mut row_w = vec![0.0f64; used.len()];
        let mut row_h = vec![0.0f64; used.len()];
        for v in 0..n {
            row_w[key[v]] += sizes[v].0 + GAP;
            row_h[key[v]] = row_h[key[v]].max(sizes[v].1);
        }
        let w = row_w.iter().copied().fold(0.0, f64::max);
        let h: f64 = row_h.iter().map(|h| h + RANK_GAP).sum();
        (key, w / h.max(1.0))
    };
    // More slices until the picture is no wider than a screen's shape.
    let mut best = cut(k0);
    let mut k = k0;
    while best.1 > SCREEN && k < 4 * k0 {
        k += (k / 4).max(1);
        let next = cut(k);
        if (next.1 / SCREEN).ln().abs() >= (best.1 / SCREEN).ln().abs() {
            break;
        }
        best = next;
    }
    Some(best.0)
}

/// Edge crossings between every two adjacent layers (`pos`: the place of
/// each node in its layer): pairs of edges whose ends lie in opposite
/// orders, counted as inversions with a Fenwick tree.
fn crossings(layers: &[Vec<usize>], down: &[Vec<usize>], pos: &[f64]) -> usize {
    let mut total = 0;
    let mut ends: Vec<(usize, usize)> = Vec::new();
    for pair in layers.windows(2) {
        let width = pair[1].len();
        ends.clear();
        for &u in &pair[0] {
            for &v in &down[u] {
                ends.push((pos[u] as usize, pos[v] as usize));
            }
        }
        ends.sort_unstable();
        // For each edge in order, the edges before it that end further right.
        let mut tree = vec![0usize; width + 1];
        for (seen, &(_, b)) in ends.iter().enumerate() {
            let mut at_most = 0;
            let mut i = b + 1;
            while i > 0 {
                at_most += tree[i];
                i &= i - 1;
            }
            total += seen - at_most;
            let mut i = b + 1;
            while i <= width {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

/// Crossings between the edges of `a` and of `b` into one neighbouring
/// layer when `a` stands left of `b`.
fn pair_crossings(a: &[usize], b: &[usize], pos: &[f64]) -> usize {
    let mut c = 0;
    for &x in a {
        for &y in b {
            if pos[x] > pos[y] {
                c += 1;
            }
        }
    }
    c
}

/// Swaps neighbours in a layer wherever that removes crossings with both
/// neighbouring layers, until no swap helps (a few passes at most).
fn transpose(layers: &mut [Vec<usize>], up: &[Vec<usize>], down: &[Vec<usize>], pos: &mut [f64]) {
    for _ in 0..4 {
        let mut better = false;
        for layer in layers.iter_mut() {
            for i in 1..layer.len() {
                let (a, b) = (layer[i - 1], layer[i]);
                let now =
                    pair_crossings(&up[a], &up[b], pos) + pair_crossings(&down[a], &down[b], pos);
                let swapped =
                    pair_crossings(&up[b], &up[a], pos) + pair_crossings(&down[b], &down[a], pos);
                if swapped < now {
                    layer.swap(i - 1, i);
                    pos[a] = i as f64;
                    pos[b] = (i - 1) as f64;
                    better = true;
                }
            }
        }
        if !better {
            break;
        }
    }
}

fn mean(it: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut c) = (0.0, 0usize);
    for x in it {
        s += x;
        c += 1;
    }
    (c > 0).then(|| s / c as f64)
}

/// Balanced placement of one layer: the mean of a left-packed and a
/// right-packed placement towards `want`, which keeps order and gaps.
fn place(layer: &[usize], want: &[f64], w: &[f64], gap: &[f64], x: &mut [f64]) {
    let k = layer.len();
    if k == 0 {
        return;
    }
    let sep = |a: usize, b: usize| (w[a] + w[b]) / 2.0 + gap[a].max(gap[b]);
    let mut left = vec![0.0; k];
    let mut right = vec![0.0; k];
    for i in 0..k {
        let d = want[layer[i]];
        left[i] = if i == 0 {
            d
        } else {
            d.max(left[i - 1] + sep(layer[i - 1], layer[i]))
        };
    }
    for i in (0..k).rev() {
        let d = want[layer[i]];
        right[i] = if i == k - 1 {
            d
        } else {
            d.min(right[i + 1] - sep(layer[i], layer[i + 1]))
        };
    }
    for i in 0..k {
        x[layer[i]] = (left[i] + right[i]) / 2.0;
    }
}

struct Ordered {
    rank: Vec<usize>,
    w: Vec<f64>,
    gap: Vec<f64>,
    chains: Vec<Vec<usize>>,
    layers: Vec<Vec<usize>>,
    up: Vec<Vec<usize>>,
    down: Vec<Vec<usize>>,
    pos: Vec<f64>,
    /// Per layout node: 0, or a shared dummy on the trunk of its edges'
    /// source (1) or target (2).
    trunk: Vec<u8>,
}

/// Dummy nodes on long edges, then barycentre sweeps against crossings.
/// With `share`, the long edges of one node share their dummies (one per
/// layer they pass): those of the end with more edges (a trunk down from
/// a chain calling hundreds, or into a chain called from hundreds), drawn
/// as one line until they part.
fn order(base: &[usize], dir: &[(usize, usize)], sizes: &[(f64, f64)], share: bool) -> Ordered {
    let n = sizes.len();
    let mut rank = base.to_vec();
    let mut w: Vec<f64> = sizes.iter().map(|s| s.0).collect();
    let mut gap: Vec<f64> = vec![GAP; n];
    let (mut outdeg, mut indeg) = (vec![0usize; n], vec![0usize; n]);
    if share {
        for &(u, v) in dir {
            outdeg[u] += 1;
            indeg[v] += 1;
        }
    }
    // (node, whether it is the edges' source) -> its trunk of dummies, by
    // distance from that node (`usize::MAX` where none is made yet).
    let mut shared: rustc_hash::FxHashMap<(usize, bool), Vec<usize>> = Default::default();
    let mut trunk: Vec<u8> = vec![0; n];

    // Chains of layout nodes per edge: [from, dummies..., to] along `dir`,
    // and the links between layers, each once. A shared dummy has one
    // neighbour on its trunk's side, so a link along a trunk is new exactly
    // when the chain made that dummy; only links that end at a real node
    // are looked up (a wrapped picture's trunks run through dozens of
    // layers, and looking up every link was most of the ordering's time).
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut seen: rustc_hash::FxHashSet<(usize, usize)> = Default::default();
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(dir.len());
    for &(u, v) in dir {
        let mut c = vec![u];
        // Whether the previous node of the chain is a dummy made by it.
        let mut prev_fresh = false;
        let diverging = outdeg[u] >= indeg[v];
        if base[v] > base[u] + 1 {
            let key = if diverging { (u, true) } else { (v, false) };
            let mut trunk_of = if share {
                let t = shared.entry(key).or_default();
                let long = base[v] - base[u] - 1;
                if t.len() < long {
                    t.resize(long, usize::MAX);
                }
                Some(t)
            } else {
                None
            };
            for r in base[u] + 1..base[v] {
                let mut fresh = || {
                    rank.push(r);
                    w.push(DUMMY_W);
                    gap.push(0.0);
                    trunk.push(if !share {
                        0
                    } else if key.1 {
                        1
                    } else {
                        2
                    });
                    up.push(Vec::new());
                    down.push(Vec::new());
                    rank.len() - 1
                };
                let (d, made) = match trunk_of.as_deref_mut() {
                    Some(t) => {
                        let at = if diverging {
                            r - base[u] - 1
                        } else {
                            base[v] - 1 - r
                        };
                        if t[at] == usize::MAX {
                            t[at] = fresh();
                            (t[at], true)
                        } else {
                            (t[at], false)
                        }
                    }
                    None => (fresh(), true),
                };
                let prev = *c.last().expect("the chain starts with its source");
                let new = if !share {
                    true
                } else if diverging {
                    made
                } else if prev == u {
                    seen.insert((u, d))
                } else {
                    prev_fresh
                };
                if new {
                    down[prev].push(d);
                    up[d].push(prev);
                }
                prev_fresh = made;
                c.push(d);
            }
        }
        let prev = *c.last().expect("the chain starts with its source");
        if rank[prev] + 1 == rank[v] {
            let new = if !share {
                true
            } else if prev != u && !diverging {
                prev_fresh
            } else {
                seen.insert((prev, v))
            };
            if new {
                down[prev].push(v);
                up[v].push(prev);
            }
        }
        c.push(v);
        chains.push(c);
    }
    let total = rank.len();
    let layers_n = rank.iter().max().map_or(0, |m| m + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layers_n];
    for (i, &r) in rank.iter().enumerate() {
        layers[r].push(i);
    }

    // Order within layers: barycentre sweeps.
    let mut pos = vec![0.0f64; total];
    for l in &layers {
        for (i, &x) in l.iter().enumerate() {
            pos[x] = i as f64;
        }
    }
    // A big graph gets a few sweeps and keeps the last order: counting its
    // crossings after every sweep would cost more than the sweeps.
    let big = total > BIG;
    let sweeps = if big { SWEEPS_BIG } else { SWEEPS };
    let mut best = if big {
        (usize::MAX, Vec::new())
    } else {
        (crossings(&layers, &down, &pos), layers.clone())
    };
    let mut stale = 0;
    for sweep in 0..sweeps {
        if best.0 == 0 {
            break;
        }
        let downward = sweep % 2 == 0;
        let order: Vec<usize> = if downward {
            (1..layers_n).collect()
        } else {
            (0..layers_n.saturating_sub(1)).rev().collect()
        };
        for r in order {
            let layer = &mut layers[r];
            let keys: Vec<(f64, usize)> = layer
                .iter()
                .map(|&x| {
                    let nb = if downward { &up[x] } else { &down[x] };
                    (mean(nb.iter().map(|&y| pos[y])).unwrap_or(pos[x]), x)
                })
                .collect();
            let mut keys = keys;
            // Ties break on the current position, which no two nodes of a
            // layer share: the order is total, so an unstable sort gives
            // the stable sort's result, faster.
            keys.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(pos[a.1].total_cmp(&pos[b.1])));
            for (i, (_, x)) in keys.into_iter().enumerate() {
                layer[i] = x;
                pos[x] = i as f64;
            }
        }
        if big {
            continue;
        }
        if total <= TRANSPOSE_MAX {
            transpose(&mut layers, &up, &down, &mut pos);
        }
        let c = crossings(&layers, &down, &pos);
        if c < best.0 {
            best = (c, layers.clone());
            stale = 0;
        } else {
            stale += 1;
            if stale >= STALE {
                break;
            }
        }
    }
    if !big {
        layers = best.1;
    }
    for l in &layers {
        for (i, &x) in l.iter().enumerate() {
            pos[x] = i as f64;
        }
    }

    Ordered {
        rank,
        w,
        gap,
        chains,
        layers,
        up,
        down,
        pos,
        trunk,
    }
}

/// Lays out a view; never fails. Each connected part of the graph (a
/// built-in chain with everything it calls, a chain nothing calls) is laid
/// out on its own, so that no part's callees mix with another's, and the
/// parts are packed in rows to keep the picture near a screen's shape.
pub(super) fn layout(view: &View) -> Layout {
    let parts = components(view);
    if parts.len() < 2 {
        let l = layout_part(view, None);
        return if aspect(&l) > WIDE {
            layout_part(view, Some(l))
        } else {
            l
        };
    }
    let mut out = Layout {
        nodes: vec![NodeBox::default(); view.nodes.len()],
        edges: vec![EdgePath::default(); view.edges.len()],
        engine: Engine::Layered,
        ..Default::default()
    };
    let subs: Vec<(View, Vec<usize>)> = parts.iter().map(|idx| sub_view(view, idx)).collect();
    let mut laid: Vec<Layout> = subs.iter().map(|(sub, _)| layout_part(sub, None)).collect();
    // Each part's drawing without its margin, plus the gap to the next.
    let size = |laid: &[Layout]| -> Vec<(f64, f64)> {
        laid.iter()
            .map(|l| {
                (
                    l.width - 2.0 * MARGIN + PART_GAP,
                    l.height - 2.0 * MARGIN + PART_GAP,
                )
            })
            .collect()
    };
    let mut at = pack(&size(&laid));
    // Packed and still much wider than high: reshape the wide parts.
    let (w, h) = extent(&size(&laid), &at);
    if w / h.max(1.0) > WIDE && laid.iter().any(|l| aspect(l) > WIDE) {
        for (l, (sub, _)) in laid.iter_mut().zip(&subs) {
            if aspect(l) > WIDE {
                *l = layout_part(sub, Some(std::mem::take(l)));
            }
        }
        at = pack(&size(&laid));
    }
    let laid: Vec<(Layout, Vec<usize>)> = laid
        .into_iter()
        .zip(subs)
        .map(|(l, (_, eidx))| (l, eidx))
        .collect();
    for ((idx, (l, eidx)), (x, y)) in parts.iter().zip(laid).zip(at) {
        let (dx, dy) = (x - MARGIN, y - MARGIN);
        for (k, &i) in idx.iter().enumerate() {
            let b = l.nodes[k];
            out.nodes[i] = NodeBox {
                x: b.x + dx,
                y: b.y + dy,
                ..b
            };
        }
        for (k, mut p) in l.edges.into_iter().enumerate() {
            shift_edge(&mut p, dx, dy);
            out.edges[eidx[k]] = p;
        }
    }
    normalise(&mut out, view, MARGIN);
    out
}

/// Node indices of each weakly connected part of the view's graph, parts in
/// the order of their first node, nodes in view order.
fn components(view: &View) -> Vec<Vec<usize>> {
    let n = view.nodes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut a: usize) -> usize {
        while parent[a] != a {
            parent[a] = parent[parent[a]];
            a = parent[a];
        }
        a
    }
    for e in &view.edges {
        let (a, b) = (find(&mut parent, e.from), find(&mut parent, e.to));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut slot = vec![usize::MAX; n];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for v in 0..n {
        let r = find(&mut parent, v);
        if slot[r] == usize::MAX {
            slot[r] = out.len();
            out.push(Vec::new());
        }
        out[slot[r]].push(v);
    }
    out
}

/// Space round a drawing.
const MARGIN: f64 = 16.0;
/// Space between the drawings of two parts packed side by side.
const PART_GAP: f64 = 20.0;

/// The picture shape packing aims at (width / height).
const SCREEN: f64 = 4.0 / 3.0;
/// Wider (or, inverted, taller) than this a picture is reshaped where it
/// can be: wide layers wrapped into rows, parts packed another way.
pub(super) const WIDE: f64 = 2.7;

/// Top-left corners for parts of the given sizes, placed in their order
/// left to right in rows. The row
/// width is chosen among a range so that the whole comes nearest a screen's
/// shape without wasting much room.
pub(super) fn pack(sizes: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let widest = sizes.iter().map(|s| s.0).fold(0.0, f64::max);
    let total: f64 = sizes.iter().map(|s| s.0).sum();
    let area: f64 = sizes.iter().map(|s| s.0 * s.1).sum();
    let shelf = |limit: f64| {
        let mut at = Vec::with_capacity(sizes.len());
        let (mut x, mut y, mut row_h, mut w) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for &(sw, sh) in sizes {
            if x > 0.0 && x + sw > limit {
                y += row_h;
                x = 0.0;
                row_h = 0.0;
            }
            at.push((x, y));
            x += sw;
            w = w.max(x);
            row_h = row_h.max(sh);
        }
        (at, w, y + row_h)
    };
    // Beyond WIDE either way costs far more than any room saved.
    let score = |w: f64, h: f64| {
        let off = (w / h).ln().abs() - WIDE.ln();
        0.5 * (w / h / SCREEN).ln().abs() + (w * h / area).ln() + 10.0 * off.max(0.0)
    };
    let mut best = shelf(total);
    let mut limit = widest;
    while limit < total {
        let cand = shelf(limit);
        if score(cand.1, cand.2) < score(best.1, best.2) {
            best = cand;
        }
        limit *= 1.15;
    }
    best.0
}

/// Width and height of parts of `sizes` placed at `at`.
fn extent(sizes: &[(f64, f64)], at: &[(f64, f64)]) -> (f64, f64) {
    sizes.iter().zip(at).fold((0.0, 0.0), |(w, h), (s, p)| {
        (f64::max(w, p.0 + s.0), f64::max(h, p.1 + s.1))
    })
}

/// The bundle an edge belongs to: with `--rules`, the rules of one chain
/// that go to one box (its source and target) end at one point, as the
/// single edge that stands for them without `--rules` does; every other
/// edge (`None`) has an end of its own.
fn rule_bundle(e: &ViewEdge) -> Option<(usize, usize)> {
    e.from_row.map(|_| (e.from, e.to))
}

/// Least distance between the ends of two edges on one side of a box.
const PORT_GAP: f64 = 6.0;
/// Widest a box is made to give its edges room.
const PORT_ROOM_MAX: f64 = 320.0;

/// `sizes` with boxes widened where their edges would otherwise meet the
/// box closer than [`PORT_GAP`] (a verdict reached by two dozen rules, a
/// chain every zone calls): the ends spread along the box's side (see
/// `draw`) keep clear of each other, up to [`PORT_ROOM_MAX`] wide.
fn room_for_ports(
    mut sizes: Vec<(f64, f64)>,
    view: &View,
    dir: &[(usize, usize)],
) -> Vec<(f64, f64)> {
    let mut ins = vec![0usize; sizes.len()];
    let mut outs = vec![0usize; sizes.len()];
    // A bundle of rules has one end.
    let mut bundled = rustc_hash::FxHashSet::default();
    for (e, &(u, v)) in view.edges.iter().zip(dir) {
        if u != v && rule_bundle(e).is_none_or(|key| bundled.insert(key)) {
            outs[u] += 1;
            ins[v] += 1;
        }
    }
    for (s, m) in sizes
        .iter_mut()
        .zip(ins.iter().zip(&outs).map(|(a, b)| *a.max(b)))
    {
        // The ends sit on the side less 16 px of rounded corners, at
        // 1/(m+1) steps of it.
        let wanted = (PORT_GAP * (m as f64 + 1.0) + 16.0).min(PORT_ROOM_MAX);
        s.0 = s.0.max(wanted.ceil());
    }
    sizes
}

/// Lays out one connected part. Given its `unshaped` layout, much wider
/// than high, the part gets its rows wrapped shorter until it is not; that
/// layout is returned as it is when no wrapping helps.
fn layout_part(view: &View, unshaped: Option<Layout>) -> Layout {
    let n = view.nodes.len();
    let dir: Vec<(usize, usize)> = view
        .edges
        .iter()
        .map(|e| {
            if is_back(e.kind) {
                (e.to, e.from)
            } else {
                (e.from, e.to)
            }
        })
        .collect();
    let sizes = room_for_ports(view.nodes.iter().map(node_size).collect(), view, &dir);
    let base = ranks(n, &dir);
    let first = order(&base, &dir, &sizes, false);
    // Wrapping wide layers uses the crossing-reduced order, so that rows
    // hold neighbours; then everything is ordered again.
    let pos = first.pos.clone();
    let ordered = if let Some(wrapped) = wrap_wide(&base, &pos, &dir, None) {
        order(&wrapped, &dir, &sizes, false)
    } else if let Some(sliced) = slice_wide(&base, &first, &dir, &sizes) {
        order(&sliced, &dir, &sizes, true)
    } else {
        first
    };
    let Some(unshaped) = unshaped else {
        return finish(view, ordered, sizes, true);
    };
    // Still much wider than high: wrap the widest rows shorter, while that
    // brings the picture nearer a screen's shape without making it too tall.
    // The tries are drawn without growing gaps for labels (quicker); the
    // one kept is drawn again with them.
    let mut best = finish(view, ordered, sizes.clone(), false);
    let mut best_ranks: Option<Vec<usize>> = None;
    let mut cap = most_in_a_row(&best.nodes);
    let mut worse = 0;
    while aspect(&best) > WIDE && cap > 2 && n <= WRAP_MAX_NODES && worse < 2 {
        cap = (cap - (cap / 4).max(1)).max(2);
        let Some(wrapped) = wrap_wide(&base, &pos, &dir, Some(cap)) else {
            break;
        };
        let l = finish(
            view,
            order(&wrapped, &dir, &sizes, false),
            sizes.clone(),
            false,
        );
        if aspect(&l) < 1.0 / WIDE {
            break;
        }
        if aspect(&l) >= aspect(&best) {
            worse += 1;
            continue;
        }
        worse = 0;
        best = l;
        best_ranks = Some(wrapped);
    }
    match best_ranks {
        Some(r) => finish(view, order(&r, &dir, &sizes, false), sizes, true),
        None => unshaped,
    }
}

/// Width over height of a layout.
fn aspect(l: &Layout) -> f64 {
    l.width / l.height.max(1.0)
}

/// The most boxes side by side in one row of a layered drawing.
fn most_in_a_row(boxes: &[NodeBox]) -> usize {
    let mut tops: Vec<i64> = boxes.iter().map(|b| (b.y * 10.0).round() as i64).collect();
    tops.sort_unstable();
    tops.chunk_by(|a, b| a == b)
        .map(<[i64]>::len)
        .max()
        .unwrap_or(0)
}

/// Places and draws one ordered part; with `widen`, gaps where edge
/// labels collide are grown.
fn finish(view: &View, ordered: Ordered, sizes: Vec<(f64, f64)>, widen: bool) -> Layout {
    let Ordered {
        rank,
        w,
        gap,
        chains,
        layers,
        up,
        down,
        trunk,
        ..
    } = ordered;
    let total = rank.len();
    let layers_n = layers.len();

    // x coordinates: packed, then pulled towards neighbours.
    let mut x = vec![0.0f64; total];
    for l in &layers {
        let mut cur = 0.0;
        for (i, &v) in l.iter().enumerate() {
            if i > 0 {
                cur += gap[v].max(gap[l[i - 1]]);
            }
            x[v] = cur + w[v] / 2.0;
            cur += w[v];
        }
    }
    for round in 0..ROUNDS {
        let want: Vec<f64> = (0..total)
            .map(|v| {
                let nb = match round % 3 {
                    0 => &up[v],
                    1 => &down[v],
                    _ => {
                        return mean(up[v].iter().chain(&down[v]).map(|&y| x[y])).unwrap_or(x[v]);
                    }
                };
                mean(nb.iter().map(|&y| x[y])).unwrap_or(x[v])
            })
            .collect();
        let order: Vec<usize> = if round % 2 == 0 {
            (0..layers_n).collect()
        } else {
            (0..layers_n).rev().collect()
        };
        for r in order {
            place(&layers[r], &want, &w, &gap, &mut x);
        }
    }

    let placed = Placed {
        sizes,
        rank,
        x,
        chains,
        layers,
        trunk,
    };
    if !widen || view.edges.len() > MAX_LABELLED_EDGES || layers_n < 2 {
        return draw(view, &placed, &vec![RANK_GAP; layers_n]).layout;
    }
    // Tight gaps first; a gap where labels still collide once spread grows
    // and the part is drawn again.
    let mut gaps = vec![RANK_GAP; layers_n];
    for round in 0.. {
        let Drawn { mut layout, top } = draw(view, &placed, &gaps);
        let lines = Lines::of(&layout);
        spread_labels_along(&mut layout, view, &lines);
        let mut grew = false;
        for (r, why) in crowded_gaps(view, &layout, &lines, &placed.rank, &top) {
            if why == Crowding::OwnLine && round >= OWN_LINE_ROUNDS {
                continue;
            }
            if gaps[r] < RANK_GAP_MAX {
                gaps[r] = (gaps[r] + WIDEN_STEP).min(RANK_GAP_MAX);
                grew = true;
            }
        }
        if !grew {
            return layout;
        }
    }
    unreachable!("the gaps stop growing at RANK_GAP_MAX")
}

/// Why a gap is drawn again taller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Crowding {
    /// A label covers a box or another label.
    Overlap,
    /// A label found no spot beside its line and sits on it.
    OwnLine,
}

/// Rounds of drawing in which labels left on their own line make their gap
/// grow: each round spreads every label again (the bulk of a round's time),
/// and in the biggest corpus views a grown gap often leaves another label
/// stuck in the next one, so more rounds cost time for few labels.
const OWN_LINE_ROUNDS: usize = 4;

/// The gaps (by the layer above them) holding an edge label that covers a
/// box or another label, or sits on its own line, and why (a label level
/// with a layer's boxes counts for the gap below them). `top` holds the
/// layers' tops before the layout was normalised; `lines` are the lines of
/// `l`'s edges.
fn crowded_gaps(
    view: &View,
    l: &Layout,
    lines: &Lines,
    rank: &[usize],
    top: &[f64],
) -> Vec<(usize, Crowding)> {
    let Some(first) = l.nodes.first() else {
        return Vec::new();
    };
    let last_gap = top.len().saturating_sub(2);
    // Normalising moved everything by the same amount.
    let dy = first.y - top[rank[0]];
    let mut boxes = Grid::default();
    for b in &l.nodes {
        boxes.insert((b.x, b.y, b.x + b.w, b.y + b.h));
    }
    let mut labels = Grid::default();
    let mut rects = Vec::new();
    for (i, (e, ve)) in l.edges.iter().zip(&view.edges).enumerate() {
        if let Some(c) = e.label {
            let r = label_rect(&ve.label, c);
            labels.insert(r);
            rects.push((c.y - dy, r, i));
        }
    }
    let mut out: Vec<(usize, Crowding)> = Vec::new();
    for (y, r, i) in rects {
        // A label always covers itself.
        let why = if boxes.hits(r) || labels.hitting(r).len() > 1 {
            Crowding::Overlap
        } else if lines.crosses_edge(r, i) {
            Crowding::OwnLine
        } else {
            continue;
        };
        let below = top.partition_point(|&t| t <= y).saturating_sub(1);
        out.push((below.min(last_gap), why));
    }
    // A gap once, for an overlap if it holds one.
    out.sort_unstable();
    out.dedup_by_key(|(gap, _)| *gap);
    out
}

/// The x placement of one part, ready to be drawn with given gaps below
/// each layer.
struct Placed {
    sizes: Vec<(f64, f64)>,
    rank: Vec<usize>,
    x: Vec<f64>,
    chains: Vec<Vec<usize>>,
    layers: Vec<Vec<usize>>,
    trunk: Vec<u8>,
}

/// A drawn part and its layers' tops (before normalising).
struct Drawn {
    layout: Layout,
    top: Vec<f64>,
}

/// Boxes at their layers' heights (`gaps[r]` below layer `r`), edges
/// routed through their dummies, labels placed beside their lines.
fn draw(view: &View, p: &Placed, gaps: &[f64]) -> Drawn {
    let Placed {
        sizes,
        rank,
        x,
        chains,
        layers,
        trunk,
    } = p;
    let n = view.nodes.len();
    let total = rank.len();
    // y coordinates per layer, each followed by its own gap.
    let layers_n = layers.len();
    let labels = view.edges.len() <= MAX_LABELLED_EDGES;
    let mut top = vec![0.0f64; layers_n];
    let mut height = vec![0.0f64; layers_n];
    let mut y = 0.0;
    for r in 0..layers_n {
        top[r] = y;
        height[r] = layers[r]
            .iter()
            .filter(|&&v| v < n)
            .map(|&v| sizes[v].1)
            .fold(0.0, f64::max);
        y += height[r] + gaps[r];
    }
    let boxes: Vec<NodeBox> = (0..n)
        .map(|v| NodeBox {
            x: x[v] - sizes[v].0 / 2.0,
            y: top[rank[v]],
            w: sizes[v].0,
            h: sizes[v].1,
        })
        .collect();

    // Ports: edges leave a box's bottom and enter a box's top spread out in
    // the order of where they go, so parallel edges do not sit on each other.
    let next_x = |c: &Vec<usize>, i: usize| x[c[i]];
    let mut out_port: Vec<Vec<(f64, usize)>> = vec![Vec::new(); n];
    let mut in_port: Vec<Vec<(f64, usize)>> = vec![Vec::new(); n];
    for (ei, c) in chains.iter().enumerate() {
        let (u, v) = (c[0], c[c.len() - 1]);
        if rank[u] < rank[v] {
            out_port[u].push((next_x(c, 1), ei));
            in_port[v].push((next_x(c, c.len() - 2), ei));
        }
    }
    let mut start_x = vec![0.0f64; chains.len()];
    let mut end_x = vec![0.0f64; chains.len()];
    let mut fan_index = vec![0usize; chains.len()];
    for v in 0..n {
        let b = &boxes[v];
        for (ports, store) in [
            (&mut out_port[v], &mut start_x),
            (&mut in_port[v], &mut end_x),
        ] {
            ports.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            // One slot an edge, or a bundle (see `rule_bundle`).
            let mut slot = Vec::with_capacity(ports.len());
            let mut slots = 0usize;
            let mut bundles: rustc_hash::FxHashMap<(usize, usize), usize> = Default::default();
            for &(_, ei) in ports.iter() {
                let k = match rule_bundle(&view.edges[ei]) {
                    Some(key) => *bundles.entry(key).or_insert(slots),
                    None => slots,
                };
                if k == slots {
                    slots += 1;
                }
                slot.push(k);
            }
            let m = slots as f64;
            // Keep ports off the rounded corners.
            let inner = (b.w - 16.0).max(b.w * 0.5);
            for (&(_, ei), &k) in ports.iter().zip(&slot) {
                store[ei] = b.x + (b.w - inner) / 2.0 + inner * (k as f64 + 1.0) / (m + 1.0);
            }
        }
        for (k, &(_, ei)) in out_port[v].iter().enumerate() {
            fan_index[ei] = k;
        }
    }

    // Labels avoid boxes and each other: a coarse grid of what is taken.
    let mut grid = Grid::default();
    if labels {
        for b in &boxes {
            grid.insert((b.x, b.y, b.x + b.w, b.y + b.h));
        }
    }
    let mut edges = Vec::with_capacity(chains.len());
    let mut drawn = vec![false; total];
    for (ei, c) in chains.iter().enumerate() {
        let ve = &view.edges[ei];
        let (u, v) = (c[0], c[c.len() - 1]);
        let (bu, bv) = (boxes[u], boxes[v]);
        let mut pts: Vec<Point> = Vec::new();
        if rank[u] < rank[v] {
            let row = ve.from_row.filter(|_| !is_back(ve.kind));
            match row {
                Some(r) => {
                    // Leave from the rule's row, on the side the edge heads to.
                    let ry = bu.y + row_centre(&view.nodes[u], r);
                    let right = next_x(c, 1) >= bu.x + bu.w / 2.0;
                    let sx = if right { bu.x + bu.w } else { bu.x };
                    let out = if right { sx + 12.0 } else { sx - 12.0 };
                    pts.push(Point::new(sx, ry));
                    pts.push(Point::new(out, ry));
                    pts.push(Point::new(out, bu.y + bu.h + 8.0));
                }
                None => pts.push(Point::new(start_x[ei], bu.y + bu.h)),
            }
            // A box lower than its layer's tallest: straight down to the
            // layer's bottom first, so the slant runs below every box.
            let floor = top[rank[u]] + height[rank[u]];
            let last = pts[pts.len() - 1];
            if last.y < floor {
                pts.push(Point::new(last.x, floor));
            }
            // A trunk shared with edges drawn before is drawn once: an
            // edge down a source's trunk starts where the drawn part ends,
            // one into a target's trunk ends where it meets the drawn part.
            let mut mid = &c[1..c.len() - 1];
            if let Some(&d) = mid.first()
                && trunk[d] == 1
                && let Some(i) = mid.iter().rposition(|&d| drawn[d])
            {
                let d = mid[i];
                pts.clear();
                pts.push(Point::new(x[d], top[rank[d]] + height[rank[d]]));
                mid = &mid[i + 1..];
            }
            let meet = mid
                .iter()
                .position(|&d| trunk[d] == 2 && drawn[d])
                .unwrap_or(mid.len());
            for &d in &mid[..meet] {
                pts.push(Point::new(x[d], top[rank[d]]));
                pts.push(Point::new(x[d], top[rank[d]] + height[rank[d]]));
                drawn[d] = trunk[d] != 0;
            }
            match mid.get(meet) {
                Some(&d) => pts.push(Point::new(x[d], top[rank[d]])),
                None => pts.push(Point::new(end_x[ei], bv.y)),
            }
        } else {
            // Against the ranks (a broken cycle) or within one: straight
            // from border to border.
            let (cu, cv) = (bu.centre(), bv.centre());
            pts.push(clip(&bu, cv));
            pts.push(clip(&bv, cu));
        }
        if is_back(ve.kind) {
            pts.reverse();
        }
        let label = if labels && !ve.label.is_empty() && pts.len() >= 2 {
            // Along the first stretch leaving the source (the last one
            // for returns, which leave from below).
            let (a, b) = if is_back(ve.kind) {
                (pts[pts.len() - 1], pts[pts.len() - 2])
            } else {
                let k = if ve.from_row.is_some() && pts.len() > 3 {
                    2
                } else {
                    0
                };
                (pts[k], pts[k + 1])
            };
            let w = text_width(&ve.label, TEXT_SIZE) + 6.0;
            let h = TEXT_SIZE + 4.0;
            let first = fan_index[ei] % 3;
            let tries = [0.5, 0.3, 0.7, 0.15, 0.85, 0.4, 0.6, 0.22, 0.78];
            // Beside the line, never on it: the label's corner sits by the
            // point on the line, the label above it on the side the line
            // does not head to (up-right of a line going down-right), so
            // the line passes clear of it.
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            let right = (dx >= 0.0) == (dy >= 0.0);
            let ox = (w / 2.0 + LABEL_GAP) * if right { 1.0 } else { -1.0 };
            let oy = -(h / 2.0 + LABEL_GAP);
            let at = |t: f64| Point::new(a.x + dx * t + ox, a.y + dy * t + oy);
            let rect = |c: Point| (c.x - w / 2.0, c.y - h / 2.0, c.x + w / 2.0, c.y + h / 2.0);
            // On the line only where nothing beside it is free.
            let on = |t: f64| Point::new(a.x + dx * t, a.y + dy * t);
            let order = std::iter::once(tries[first]).chain(tries.iter().copied());
            let pick = order
                .clone()
                .map(at)
                .chain(order.map(on))
                .find(|&c| !grid.hits(rect(c)))
                .unwrap_or_else(|| on(tries[first]));
            grid.insert(rect(pick));
            Some(pick)
        } else {
            None
        };
        edges.push(EdgePath {
            points: pts,
            curved: false,
            label,
        });
    }
    let mut l = Layout {
        width: 0.0,
        height: 0.0,
        nodes: boxes,
        edges,
        engine: Engine::Layered,
        clusters: Vec::new(),
    };
    normalise(&mut l, view, MARGIN);
    Drawn { layout: l, top }
}

/// Where the segment from the centre of `b` towards `p` leaves `b`.
fn clip(b: &NodeBox, p: Point) -> Point {
    let c = b.centre();
    let (dx, dy) = (p.x - c.x, p.y - c.y);
    if dx == 0.0 && dy == 0.0 {
        return c;
    }
    let sx = if dx != 0.0 {
        (b.w / 2.0) / dx.abs()
    } else {
        f64::MAX
    };
    let sy = if dy != 0.0 {
        (b.h / 2.0) / dy.abs()
    } else {
        f64::MAX
    };
    let s = sx.min(sy).min(1.0);
    Point::new(c.x + dx * s, c.y + dy * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_are_counted_between_adjacent_layers() {
        // Layer 0: a b; layer 1: c d. a->d and b->c cross once; a->c does not
        // cross b->c (they share an end).
        let layers = vec![vec![0, 1], vec![2, 3]];
        let mut down = vec![vec![]; 4];
        down[0] = vec![3, 2];
        down[1] = vec![2];
        let pos = vec![0.0, 1.0, 0.0, 1.0];
        assert_eq!(crossings(&layers, &down, &pos), 1);
        // With b left of a nothing crosses.
        let swapped = vec![1.0, 0.0, 0.0, 1.0];
        assert_eq!(crossings(&layers, &down, &swapped), 0);
    }

    #[test]
    fn transpose_removes_a_crossing_the_sweeps_left() {
        // a->d, b->c: swapping c and d removes the crossing.
        let mut layers = vec![vec![0, 1], vec![2, 3]];
        let mut down = vec![vec![]; 4];
        let mut up = vec![vec![]; 4];
        down[0] = vec![3];
        down[1] = vec![2];
        up[3] = vec![0];
        up[2] = vec![1];
        let mut pos = vec![0.0, 1.0, 0.0, 1.0];
        assert_eq!(crossings(&layers, &down, &pos), 1);
        transpose(&mut layers, &up, &down, &mut pos);
        assert_eq!(crossings(&layers, &down, &pos), 0);
    }

    #[test]
    fn ranks_are_longest_paths_and_survive_cycles() {
        assert_eq!(ranks(4, &[(0, 1), (1, 2), (0, 2), (2, 3)]), [0, 1, 2, 3]);
        let r = ranks(3, &[(0, 1), (1, 2), (2, 1)]);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn placement_keeps_gaps() {
        let mut x = vec![0.0; 3];
        place(&[0, 1, 2], &[5.0, 5.0, 5.0], &[10.0; 3], &[2.0; 3], &mut x);
        assert!(x[1] - x[0] >= 12.0 - 1e-9 && x[2] - x[1] >= 12.0 - 1e-9);
        assert!((x[1] - 5.0).abs() < 1e-9);
    }

    /// A chain calling twelve others that each end in a target of their
    /// own, wrapped to rows of at most three: the targets, which go right
    /// below their caller, must not make a row longer than that, and every
    /// edge still points down.
    #[test]
    fn capped_wrap_keeps_rows_short_and_edges_down() {
        let mut dir = Vec::new();
        for c in 1..=12 {
            dir.push((0, c));
            dir.push((c, c + 12));
        }
        let rank = ranks(25, &dir);
        let pos: Vec<f64> = (0..25).map(|v| v as f64).collect();
        let out = wrap_wide(&rank, &pos, &dir, Some(3)).expect("wrapped");
        let rows = out.iter().max().unwrap() + 1;
        for r in 0..rows {
            let k = out.iter().filter(|&&x| x == r).count();
            assert!(k <= 3, "row {r} holds {k}: {out:?}");
        }
        for &(u, v) in &dir {
            assert!(out[u] < out[v], "{u} -> {v} points up: {out:?}");
        }
    }

    /// Five built-in chains, each with only its policy, used to be drawn as
    /// one strip eight times wider than high; packed, the parts keep near a
    /// screen's shape and never overlap.
    #[test]
    fn unlinked_parts_pack_into_rows_near_a_screen_shape() {
        let sizes = vec![(250.0, 150.0); 5];
        let at = pack(&sizes);
        let w = at.iter().map(|p| p.0 + 250.0).fold(0.0, f64::max);
        let h = at.iter().map(|p| p.1 + 150.0).fold(0.0, f64::max);
        assert!(w / h <= 3.0 && h / w <= 3.0, "{w} x {h}");
        for (i, a) in at.iter().enumerate() {
            for b in &at[i + 1..] {
                let apart = (a.0 - b.0).abs() >= 250.0 || (a.1 - b.1).abs() >= 150.0;
                assert!(apart, "{a:?} and {b:?} overlap");
            }
        }
        // One part stays where it is.
        assert_eq!(pack(&[(100.0, 10.0)]), [(0.0, 0.0)]);
    }
}
