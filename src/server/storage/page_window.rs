//! Where each snapshot page's range ends. etcd (3.4, 3.5) answers a ranged read with the count
//! of every key in the range, and finds it by walking the whole range, limit or not. A million
//! keys read as a thousand pages that each run to the end of the prefix walk the range a
//! thousand times: measured at 300,000 keys, 67 ms a page that way, 3.6 ms with a tight end.
//! At a million keys the loop would take minutes, and a standby would never start serving.
//!
//! So a page asks for a window: from where the last one stopped to a key just above the last
//! key read, made by bumping one of that key's bytes. Ids in keys are zero-padded decimals, so a
//! bump three digits from the end spans about a thousand ids, one page's worth. After a page
//! that filled its limit the window narrows tenfold; after a sparse one it widens tenfold, so a
//! gap of any size is crossed in a few pages. Nothing about the key schema is assumed beyond
//! byte order: a bad guess costs one slower page, never a missed key.

/// A window is widened after a page that returned fewer than its limit divided by this.
const SPARSE_FRACTION: usize = 4;
/// The first window after the range's first page: the byte this far from the end of the last
/// key is bumped (about a thousand ids of a zero-padded decimal id).
const FIRST_BUMP_FROM_END: usize = 4;

/// The reads of one key range `[start, range_end)`, page by page.
pub struct PageWindow {
    /// Where the next page starts.
    start: Vec<u8>,
    /// Where the next page ends.
    end: Vec<u8>,
    range_end: Vec<u8>,
    /// Bumps never touch the range's prefix: its length.
    floor: usize,
    /// Which byte of a key the next bump increments; `None` until the first page has shown a
    /// key to bump.
    pos: Option<usize>,
}

impl PageWindow {
    /// All keys that start with `prefix`. The first page runs to the end of the range: there is
    /// no key to bump yet.
    pub fn new(prefix: &[u8]) -> PageWindow {
        let range_end = prefix_end(prefix);
        PageWindow {
            start: prefix.to_vec(),
            end: range_end.clone(),
            range_end,
            floor: prefix.len(),
            pos: None,
        }
    }

    /// The next page: keys in `[start, end)`.
    pub fn next(&self) -> (&[u8], &[u8]) {
        (&self.start, &self.end)
    }

    /// Moves past a page that returned `keys` keys, the last being `last`, and that `filled` its
    /// limit (etcd's `more`: keys of the window are left). False once the range is read.
    /// Windows tile the range: each starts exactly where the keys read so far end.
    pub fn advance(
        &mut self,
        keys: usize,
        last: Option<&[u8]>,
        filled: bool,
        limit: usize,
    ) -> bool {
        match last.filter(|_| filled) {
            // Keys remain inside this window: go on from past the last one, in a narrower window.
            Some(last) => {
                let pos = self
                    .pos
                    .map_or(last.len().saturating_sub(FIRST_BUMP_FROM_END), |p| p + 1)
                    .max(self.floor);
                self.pos = Some(pos);
                self.start = [last, &[0]].concat();
                self.end =
                    self.above(&last[..last.len().min(pos + 1)]).min(std::mem::take(&mut self.end));
            }
            // The window is read whole: the next one starts at its end, as wide or (after a
            // sparse page) ten times wider.
            None => {
                if self.end >= self.range_end {
                    return false;
                }
                // Only the first page runs to the range's end, so a position is set by now.
                let pos = self.pos.expect("a window short of the range's end follows a narrowing");
                let sparse = keys == 0 || keys * SPARSE_FRACTION < limit;
                self.start = std::mem::take(&mut self.end);
                if sparse && pos == self.floor {
                    // As wide as a window gets and still sparse: read on to the range's end.
                    self.end = self.range_end.clone();
                    return true;
                }
                let pos = if sparse { pos - 1 } else { pos };
                self.pos = Some(pos);
                self.end = self.above(&self.start[..self.start.len().min(pos + 1)]);
            }
        }
        true
    }

    /// The least key above every key that starts with `window`, counting decimal digits as
    /// numbers (`…0019` is followed by `…0020`, not `…001:`), so that consecutive windows keep
    /// one width; the range's end once the carry reaches the prefix.
    fn above(&self, window: &[u8]) -> Vec<u8> {
        let mut end = window.to_vec();
        for i in (self.floor..end.len()).rev() {
            match end[i] {
                b'9' => end[i] = b'0',
                b if b.is_ascii_digit() => {
                    end[i] += 1;
                    return end.min(self.range_end.clone());
                }
                0xff => {}
                _ => {
                    end[i] += 1;
                    end.truncate(i + 1);
                    return end.min(self.range_end.clone());
                }
            }
        }
        self.range_end.clone()
    }
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(b) = end.last_mut() {
        if *b < 0xff {
            *b += 1;
            return end;
        }
        end.pop();
    }
    vec![0xff] // only an all-0xff prefix gets here; our prefixes are ASCII
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Reads `keys` as a store with `limit` would, through windows; returns the keys read, the
    /// pages, and the most keys any one read's range held (what etcd walks to count).
    fn read_all(
        keys: &BTreeSet<Vec<u8>>,
        prefix: &[u8],
        limit: usize,
    ) -> (Vec<Vec<u8>>, usize, usize) {
        let mut w = PageWindow::new(prefix);
        let (mut read, mut pages, mut walked) = (Vec::new(), 0, 0);
        loop {
            let (start, end) = w.next();
            let (start, end) = (start.to_vec(), end.to_vec());
            assert!(start < end, "{start:?} < {end:?}");
            let in_range: Vec<&Vec<u8>> = keys.range(start.clone()..end.clone()).collect();
            walked = walked.max(if pages == 0 { 0 } else { in_range.len() });
            let page: Vec<Vec<u8>> = in_range.iter().take(limit).map(|k| k.to_vec()).collect();
            let filled = in_range.len() > limit;
            pages += 1;
            read.extend(page.iter().cloned());
            if !w.advance(page.len(), page.last().map(Vec::as_slice), filled, limit) {
                return (read, pages, walked);
            }
        }
    }

    fn table_keys(ids: impl Iterator<Item = u64>) -> BTreeSet<Vec<u8>> {
        ids.map(|id| format!("/p/c/0000000001/tables/{id:020}").into_bytes()).collect()
    }

    #[test]
    fn dense_ids_are_read_in_windows_of_about_one_page() {
        let keys = table_keys(1..=100_000);
        let (read, pages, walked) = read_all(&keys, b"/p/c/", 1_024);
        assert_eq!(read, keys.iter().cloned().collect::<Vec<_>>(), "every key once, in order");
        // A hundred windows of a thousand ids, then empty ones, each ten times wider, to the end.
        assert!(pages < 150, "{pages} pages");
        assert!(
            walked <= 2_048,
            "after the first page no read counts more than two pages of keys: {walked}"
        );
    }

    #[test]
    fn gaps_and_mixed_keys_are_crossed_without_missing_any() {
        let mut keys = table_keys((1..=5_000).chain(2_000_000..2_003_000).chain([u64::MAX]));
        keys.extend(
            [
                "/p/c/0000000001/epoch",
                "/p/c/0000000001/nodes/0000000003",
                "/p/c/0000000002/shards/0000000009",
            ]
            .map(|k| k.as_bytes().to_vec()),
        );
        keys.insert(vec![b'/', b'p', b'/', b'c', b'/', 0xff, 0xff]);
        let (read, pages, _) = read_all(&keys, b"/p/c/", 1_024);
        assert_eq!(read, keys.iter().cloned().collect::<Vec<_>>());
        assert!(
            pages < 80,
            "a gap of two million ids takes a few widening pages, not thousands: {pages}"
        );
    }

    #[test]
    fn an_empty_range_is_one_read() {
        assert_eq!(read_all(&BTreeSet::new(), b"/p/c/", 16).1, 1);
    }

    #[test]
    fn tiny_limits_still_make_progress() {
        let keys = table_keys(1..=300);
        let (read, _, _) = read_all(&keys, b"/p/c/", 1);
        assert_eq!(read.len(), 300);
    }

    #[test]
    fn prefix_ends_carry() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
    }
}
