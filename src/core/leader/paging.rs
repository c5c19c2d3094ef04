//! Listings come in pages, in id order, so that no listing fails or stalls because the catalog
//! grew: a page is bounded both in what it returns and in what it looks at.

use crate::core::config::CoreConfig;
use crate::core::input::PageRequest;
use crate::core::output::Page;

/// Takes one page from `rows`: `(id, Some(item))` for a row that belongs in the listing and
/// `(id, None)` for one a filter left out, in id order and starting after the request's `after`.
/// It stops at the page size or after `list_scan_max` rows, whichever comes first.
pub(super) fn paginate<T>(
    req: &PageRequest,
    cfg: &CoreConfig,
    rows: impl Iterator<Item = (u64, Option<T>)>,
) -> Page<T> {
    let size = match req.size {
        0 => cfg.list_page_default,
        n => n.min(cfg.list_page_max),
    } as usize;
    let mut rows = rows.peekable();
    let (mut items, mut last, mut scanned) = (Vec::with_capacity(size.min(1_024)), None, 0);
    while items.len() < size && scanned < cfg.list_scan_max {
        let Some((id, item)) = rows.next() else { break };
        debug_assert!(
            last.is_none_or(|l| l < id) && req.after.is_none_or(|a| a < id),
            "rows come in id order after the token"
        );
        scanned += 1;
        last = Some(id);
        items.extend(item);
    }
    let next = last.filter(|_| rows.peek().is_some());
    Page { items, next }
}

/// The ids above `after`, for listings kept in vectors indexed by id.
pub(super) fn ids_after(after: Option<u64>, len: usize) -> std::ops::Range<usize> {
    let from = after.map_or(0, |a| (a as usize).saturating_add(1)).min(len);
    from..len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CoreConfig {
        CoreConfig {
            list_page_default: 3,
            list_page_max: 4,
            list_scan_max: 5,
            ..Default::default()
        }
    }

    fn ids(page: &Page<u64>) -> (Vec<u64>, Option<u64>) {
        (page.items.clone(), page.next)
    }

    #[test]
    fn pages_follow_one_another_to_the_end() {
        let all = |after: Option<u64>| {
            (0..10u64).filter(move |i| after.is_none_or(|a| *i > a)).map(|i| (i, Some(i)))
        };
        let first = paginate(&PageRequest::default(), &cfg(), all(None));
        assert_eq!(ids(&first), (vec![0, 1, 2], Some(2)));
        let big = paginate(&PageRequest { size: 100, after: first.next }, &cfg(), all(first.next));
        assert_eq!(ids(&big), (vec![3, 4, 5, 6], Some(6)), "a size above the maximum is capped");
        let last = paginate(&PageRequest { size: 4, after: Some(6) }, &cfg(), all(Some(6)));
        assert_eq!(ids(&last), (vec![7, 8, 9], None), "no token after the last page");
    }

    #[test]
    fn a_sparse_filter_answers_within_the_scan_limit_and_goes_on() {
        let only_13 = (0..20u64).map(|i| (i, (i == 13).then_some(i)));
        let page = paginate(&PageRequest::default(), &cfg(), only_13);
        assert_eq!(
            ids(&page),
            (vec![], Some(4)),
            "five rows looked at, none matched, more to come"
        );
    }

    #[test]
    fn ids_after_clamps_to_the_vector() {
        assert_eq!(ids_after(None, 3), 0..3);
        assert_eq!(ids_after(Some(1), 3), 2..3);
        assert_eq!(ids_after(Some(u64::MAX), 3), 3..3);
    }
}
