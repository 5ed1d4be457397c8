//! Compact name indexes: every spelling of every division name (and every pinyin reading of the
//! names above village level) in a finite-state transducer.
//!
//! 660,000 divisions give about 1.7 million spellings. An FST (the `fst` crate) holds them in a few
//! megabytes, is stored in the snapshot as raw bytes (loading is a copy, not a rebuild), and lets
//! the matcher find every indexed name starting at each position of a query by walking the input
//! once per position: that walk is the dictionary segmentation of the address. Each key maps to a
//! posting list of (division, spelling kind).

use fst::raw::{Fst, Node, Output};

use crate::error::{Error, Result};
use crate::gazetteer::DivId;
use crate::phonetic::Readings;
use crate::text::NameKind;

const KIND_SHIFT: u32 = 28;
const ID_MASK: u32 = (1 << KIND_SHIFT) - 1;

/// One posting: a division and the kind of spelling that led to it.
pub(crate) fn posting(id: DivId, kind: NameKind) -> u32 {
    ((kind as u32) << KIND_SHIFT) | (id & ID_MASK)
}

pub(crate) fn posting_id(p: u32) -> DivId {
    p & ID_MASK
}

pub(crate) fn posting_kind(p: u32) -> NameKind {
    NameKind::from_u8((p >> KIND_SHIFT) as u8)
}

/// Keys → posting lists, in an FST plus two flat arrays.
pub(crate) struct NameIndex {
    fst: Fst<Vec<u8>>,
    offsets: Vec<u32>,
    postings: Vec<u32>,
}

impl std::fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameIndex").field("keys", &self.fst.len()).field("postings", &self.postings.len()).finish()
    }
}

impl NameIndex {
    /// Builds from (key, posting) pairs in any order; repeated keys merge their postings, which stay
    /// sorted by division id (the matcher binary-searches them by subtree).
    pub fn build(mut entries: Vec<(String, u32)>) -> Result<NameIndex> {
        // Sorted by key, then division, then kind, so the first posting of a division is its best.
        entries.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then(posting_id(a.1).cmp(&posting_id(b.1))).then(posting_kind(a.1).cmp(&posting_kind(b.1)))
        });
        let mut builder = fst::raw::Builder::memory();
        let mut offsets = Vec::new();
        let mut postings: Vec<u32> = Vec::with_capacity(entries.len());
        let mut i = 0;
        while i < entries.len() {
            let key = &entries[i].0;
            let list = offsets.len() as u64;
            let first = postings.len();
            offsets.push(first as u32);
            while i < entries.len() && entries[i].0 == *key {
                let p = entries[i].1;
                if postings.len() == first || postings.last().is_some_and(|&l| posting_id(l) != posting_id(p)) {
                    postings.push(p);
                }
                i += 1;
            }
            builder
                .insert(key.as_bytes(), list)
                .map_err(|e| Error::Snapshot { message: format!("name index: {e}") })?;
        }
        offsets.push(postings.len() as u32);
        let bytes = builder.into_inner().map_err(|e| Error::Snapshot { message: format!("name index: {e}") })?;
        let fst = Fst::new(bytes).map_err(|e| Error::Snapshot { message: format!("name index: {e}") })?;
        Ok(NameIndex { fst, offsets, postings })
    }

    /// Restores from the parts a snapshot stores.
    pub fn from_parts(fst_bytes: Vec<u8>, offsets: Vec<u32>, postings: Vec<u32>) -> Result<NameIndex> {
        let fst = Fst::new(fst_bytes).map_err(|e| Error::Snapshot { message: format!("name index: {e}") })?;
        let ok = offsets.len() == fst.len() + 1
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().is_some_and(|&l| l as usize == postings.len());
        if !ok {
            return Err(Error::Snapshot { message: "name index posting offsets do not fit the key set".into() });
        }
        Ok(NameIndex { fst, offsets, postings })
    }

    pub fn parts(&self) -> (&[u8], &[u32], &[u32]) {
        (self.fst.as_bytes(), &self.offsets, &self.postings)
    }

    fn list(&self, out: Output) -> &[u32] {
        let i = out.value() as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.postings[a as usize..b as usize],
            _ => &[],
        }
    }

    /// The postings of one key.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> &[u32] {
        match self.fst.get(key.as_bytes()) {
            Some(out) => self.list(out),
            None => &[],
        }
    }

    /// Calls `f(start, end, postings)` for every key equal to `chars[start..end]`, for every start.
    /// `text` is the UTF-8 of `chars` and `offsets[i]` the byte offset of char `i` (plus the end).
    pub fn scan<'a>(&'a self, text: &str, offsets: &[usize], mut f: impl FnMut(usize, usize, &'a [u32])) {
        let bytes = text.as_bytes();
        let n = offsets.len() - 1;
        for start in 0..n {
            let mut node = self.fst.root();
            let mut out = Output::zero();
            let mut next_char = start + 1;
            for (bi, &b) in bytes.iter().enumerate().skip(offsets[start]) {
                let Some(t) = node.find_input(b).map(|i| node.transition(i)) else { break };
                out = out.cat(t.out);
                node = self.fst.node(t.addr);
                if bi + 1 == offsets[next_char] {
                    if node.is_final() {
                        f(start, next_char, self.list(out.cat(node.final_output())));
                    }
                    next_char += 1;
                    if next_char > n {
                        break;
                    }
                }
            }
        }
    }

    /// Like [`scan`](Self::scan) for a pinyin index: keys are syllables each followed by `'`, and
    /// each query character may be read any of its ways. Characters without pinyin end a run.
    /// Start positions where `skip[start]` is true are not tried.
    pub fn scan_pinyin<'a>(
        &'a self,
        readings: &[Readings],
        skip: &[bool],
        max_len: usize,
        mut f: impl FnMut(usize, usize, &'a [u32]),
    ) {
        let mut states: Vec<(Node<'a>, Output)> = Vec::new();
        let mut next: Vec<(Node<'a>, Output)> = Vec::new();
        for start in 0..readings.len() {
            if skip.get(start).copied().unwrap_or(false) || readings[start].is_empty() {
                continue;
            }
            states.clear();
            states.push((self.fst.root(), Output::zero()));
            for (end, r) in readings.iter().enumerate().skip(start).take(max_len) {
                next.clear();
                for &(node, out) in &states {
                    for syl in r.as_slice() {
                        if let Some((n2, o2)) = self.walk(node, out, syl.as_bytes()) {
                            next.push((n2, o2));
                        }
                    }
                }
                std::mem::swap(&mut states, &mut next);
                if states.is_empty() {
                    break;
                }
                for &(node, out) in &states {
                    if node.is_final() {
                        f(start, end + 1, self.list(out.cat(node.final_output())));
                    }
                }
            }
        }
    }

    fn walk<'a>(&'a self, mut node: Node<'a>, mut out: Output, syl: &[u8]) -> Option<(Node<'a>, Output)> {
        for &b in syl.iter().chain(b"'") {
            let t = node.transition(node.find_input(b)?);
            out = out.cat(t.out);
            node = self.fst.node(t.addr);
        }
        Some((node, out))
    }

    /// Postings of every key starting with `prefix`, at most `limit` keys (in key order).
    pub fn prefixed(&self, prefix: &str, limit: usize, mut f: impl FnMut(&str, &[u32])) {
        use fst::{Automaton, IntoStreamer, Streamer};
        let aut = fst::automaton::Str::new(prefix).starts_with();
        let mut stream = self.fst.search(aut).into_stream();
        let mut n = 0;
        while let Some((k, v)) = stream.next() {
            if n >= limit {
                break;
            }
            f(std::str::from_utf8(k).unwrap_or(""), self.list(v));
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phonetic::readings;

    fn idx(keys: &[(&str, u32)]) -> NameIndex {
        NameIndex::build(keys.iter().map(|(k, i)| (k.to_string(), posting(*i, NameKind::Official))).collect()).unwrap()
    }

    fn hits(ix: &NameIndex, text: &str) -> Vec<(usize, usize, Vec<u32>)> {
        let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        offsets.push(text.len());
        let mut out = Vec::new();
        ix.scan(text, &offsets, |s, e, p| out.push((s, e, p.iter().map(|&x| posting_id(x)).collect())));
        out
    }

    #[test]
    fn scans_every_occurrence() {
        let ix = idx(&[("洪山", 1), ("洪山区", 2), ("武汉市", 3), ("洪山", 4), ("山区", 5)]);
        assert_eq!(
            hits(&ix, "武汉市洪山区"),
            vec![(0, 3, vec![3]), (3, 5, vec![1, 4]), (3, 6, vec![2]), (4, 6, vec![5])]
        );
        assert_eq!(hits(&ix, ""), vec![]);
        assert_eq!(hits(&ix, "abc"), vec![]);
        assert_eq!(ix.get("洪山").len(), 2);
        assert!(ix.get("洪").is_empty());
    }

    #[test]
    fn keeps_the_best_kind_per_division() {
        let ix = NameIndex::build(vec![
            ("洪山".into(), posting(1, NameKind::Short)),
            ("洪山".into(), posting(1, NameKind::Official)),
        ])
        .unwrap();
        assert_eq!(ix.get("洪山").iter().map(|&p| posting_kind(p)).collect::<Vec<_>>(), [NameKind::Official]);
    }

    #[test]
    fn pinyin_scan_reads_every_way() {
        let ix = idx(&[("hong'shan'qu'", 7), ("chong'qing'", 8)]);
        let text: Vec<_> = "红山区重庆".chars().map(readings).collect();
        let mut out = Vec::new();
        ix.scan_pinyin(&text, &[], 8, |s, e, p| out.push((s, e, posting_id(p[0]))));
        assert_eq!(out, vec![(0, 3, 7), (3, 5, 8)]);
    }

    #[test]
    fn prefix_search() {
        let ix = idx(&[("hs", 1), ("hsq", 2), ("ha", 3)]);
        let mut keys = Vec::new();
        ix.prefixed("hs", 10, |k, _| keys.push(k.to_string()));
        assert_eq!(keys, ["hs", "hsq"]);
    }
}
