//! Which tables of a shard a split moves to the new shard, so that the two pieces carry about
//! the same load.
//!
//! A shard's leader names its busiest tables (a bounded list) with their load; the rest of the
//! shard's load is taken as spread evenly over the other tables. The tables are then dealt,
//! busiest first, to whichever piece is lighter (longest-processing-time first: each piece ends
//! within the load of one table of the other). When nothing is known of the load, tables count
//! one each, and the split halves the table count.
//!
//! When one table carries most of the load ([`UNSPLITTABLE_SHARE`]), no split can even it out:
//! the table cannot be cut, and moving it only moves the problem.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::ids::{ShardId, TableId};

/// A table above this share of its shard's load makes the shard unsplittable.
pub const UNSPLITTABLE_SHARE: f64 = 0.8;

/// The tables to move, in id order, or why the shard cannot be split. At most `moved_max` move
/// (a shard with more tables is split again later).
pub fn choose(
    shard: ShardId,
    tables: &BTreeSet<TableId>,
    busiest: impl Iterator<Item = (TableId, f64)>,
    shard_units: f64,
    moved_max: usize,
) -> Result<Vec<TableId>, String> {
    if tables.len() < 2 {
        return Err(format!("shard {shard} has {} table(s): there is nothing to split", tables.len()));
    }
    let known: BTreeMap<TableId, f64> = busiest.filter(|(t, l)| tables.contains(t) && l.is_finite() && *l >= 0.0).collect();
    let unknown = tables.len() - known.len();
    let rest = (shard_units - known.values().sum::<f64>()).max(0.0);
    let share = if unknown > 0 { rest / unknown as f64 } else { 0.0 };
    let mut loads: Vec<(TableId, f64)> = tables.iter().map(|t| (*t, known.get(t).copied().unwrap_or(share))).collect();
    let total: f64 = loads.iter().map(|(_, l)| l).sum();
    if total <= 0.0 {
        loads.iter_mut().for_each(|(_, l)| *l = 1.0);
    } else if let Some(&(t, l)) = loads.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        if l > UNSPLITTABLE_SHARE * total {
            return Err(format!(
                "shard {shard} is unsplittable: table {t} carries {:.0}% of its load, and a table is never cut",
                100.0 * l / total
            ));
        }
    }
    loads.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let (mut kept, mut moved_load) = (0.0, 0.0);
    let mut moved = Vec::new();
    for (t, l) in loads {
        if moved_load < kept && moved.len() < moved_max {
            moved_load += l;
            moved.push(t);
        } else {
            kept += l;
        }
    }
    moved.sort_unstable();
    Ok(moved)
}

/// Checks tables an operator named for a split: each in the shard, once, some but not all of
/// them, and at most `moved_max`.
pub fn check_named(shard: ShardId, tables: &BTreeSet<TableId>, named: &[TableId], moved_max: usize) -> Result<Vec<TableId>, String> {
    let set: BTreeSet<TableId> = named.iter().copied().collect();
    if set.len() != named.len() {
        return Err("a table is named twice".into());
    }
    if let Some(t) = set.iter().find(|t| !tables.contains(t)) {
        return Err(format!("table {t} is not in shard {shard}"));
    }
    if set.is_empty() || set.len() == tables.len() {
        return Err(format!("a split moves some of shard {shard}'s {} tables, not none or all", tables.len()));
    }
    if set.len() > moved_max {
        return Err(format!("{} tables named; a split moves at most {moved_max} (split_tables_max)", set.len()));
    }
    Ok(set.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u64>) -> BTreeSet<TableId> {
        range.map(TableId).collect()
    }

    fn load_of(moved: &[TableId], loads: &BTreeMap<TableId, f64>) -> f64 {
        moved.iter().map(|t| loads[t]).sum()
    }

    #[test]
    fn pieces_carry_even_loads_from_the_busiest_tables_and_the_rest_spread() {
        let tables = ids(0..20);
        // Four busy tables and 16 quiet ones sharing the other 160 units.
        let busiest = [(TableId(3), 200.0), (TableId(7), 150.0), (TableId(11), 100.0), (TableId(12), 90.0)];
        let moved = choose(ShardId(0), &tables, busiest.into_iter(), 700.0, 100).unwrap();
        let mut loads: BTreeMap<TableId, f64> = tables.iter().map(|&t| (t, 10.0)).collect();
        loads.extend(busiest);
        let (moved_load, total) = (load_of(&moved, &loads), 700.0);
        let ratio = moved_load / (total - moved_load);
        assert!((0.7..=1.3).contains(&ratio), "pieces of {moved_load} and {}: {ratio:.2}", total - moved_load);
    }

    #[test]
    fn without_load_the_table_count_halves_and_the_limit_holds() {
        let moved = choose(ShardId(0), &ids(0..101), std::iter::empty(), 0.0, 1_000).unwrap();
        assert_eq!(moved.len(), 50);
        let capped = choose(ShardId(0), &ids(0..101), std::iter::empty(), 0.0, 10).unwrap();
        assert_eq!(capped.len(), 10);
    }

    #[test]
    fn one_table_with_most_of_the_load_makes_a_shard_unsplittable() {
        let err = choose(ShardId(4), &ids(0..10), [(TableId(2), 900.0)].into_iter(), 990.0, 100).unwrap_err();
        assert!(err.contains("unsplittable") && err.contains("table 2") && err.contains("91%"), "{err}");
        assert!(choose(ShardId(4), &ids(0..1), std::iter::empty(), 5.0, 100).unwrap_err().contains("nothing to split"));
    }

    #[test]
    fn named_tables_are_checked() {
        let tables = ids(0..4);
        assert_eq!(check_named(ShardId(1), &tables, &[TableId(2), TableId(0)], 10).unwrap(), vec![TableId(0), TableId(2)]);
        assert!(check_named(ShardId(1), &tables, &[TableId(9)], 10).unwrap_err().contains("not in shard 1"));
        assert!(check_named(ShardId(1), &tables, &[TableId(1), TableId(1)], 10).unwrap_err().contains("twice"));
        assert!(check_named(ShardId(1), &tables, &(0..4).map(TableId).collect::<Vec<_>>(), 10).unwrap_err().contains("not none or all"));
        assert!(check_named(ShardId(1), &tables, &[TableId(1), TableId(2)], 1).unwrap_err().contains("at most 1"));
    }
}
