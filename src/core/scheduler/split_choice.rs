//! Which tables of a shard a split moves to the new shard, so that the two pieces carry about
//! the same load (or, for a shard k times too hot, so that the new shard carries a k-th of it).
//!
//! A shard's leader names its busiest tables (a bounded list) with their load; the rest of the
//! shard's load is taken as spread evenly over the other tables. The tables are then taken,
//! busiest first, for the new piece whenever that brings it nearer its target, so that it ends
//! within half a table of it. When nothing is known of the load, tables count
//! one each, and the split halves the table count.
//!
//! When one table carries most of the load ([`UNSPLITTABLE_SHARE`]), no split can even it out:
//! the table cannot be cut, and moving it only moves the problem.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::ids::{ShardId, TableId};

/// A table above this share of its shard's load makes the shard unsplittable.
pub const UNSPLITTABLE_SHARE: f64 = 0.8;

/// What a split moves: the tables, in id order, and the share of the shard's load they carry
/// (as far as it is known; by table count when nothing is).
#[derive(Clone, Debug, PartialEq)]
pub struct Chosen {
    /// The tables that move, in id order.
    pub tables: Vec<TableId>,
    /// The share of the shard's load they carry, 0 to 1.
    pub share: f64,
}

/// The tables to move so that the new shard carries about 1/`pieces` of the load (the shard is
/// then split again until it is in `pieces` even pieces), or why the shard cannot be split. At
/// most `moved_max` move (a shard with more tables is split again later).
pub fn choose(
    shard: ShardId,
    tables: &BTreeSet<TableId>,
    busiest: impl Iterator<Item = (TableId, f64)>,
    shard_units: f64,
    pieces: u32,
    moved_max: usize,
) -> Result<Chosen, String> {
    if tables.len() < 2 {
        return Err(format!(
            "shard {shard} has {} table(s): there is nothing to split",
            tables.len()
        ));
    }
    let mut loads = table_loads(tables, busiest, shard_units);
    let total: f64 = loads.iter().map(|(_, l)| l).sum();
    if let Some(&(t, l)) = loads.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        if l > UNSPLITTABLE_SHARE * total {
            return Err(format!(
                "shard {shard} is unsplittable: table {t} carries {:.0}% of its load, and a table is never cut",
                100.0 * l / total
            ));
        }
    }
    // Busiest first, each table to the new piece when that brings it nearer its target: the
    // piece ends within half a table of it.
    loads.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let target = total / pieces.max(2) as f64;
    let (mut moved, mut moved_load) = (Vec::new(), 0.0);
    for &(t, l) in &loads {
        if moved.len() < moved_max && moved_load + l / 2.0 < target {
            moved_load += l;
            moved.push(t);
        }
    }
    if moved.is_empty() {
        // Every table is above twice the target: the lightest alone comes nearest it.
        let &(t, l) = loads.last().expect("two tables or more");
        (moved_load, moved) = (l, vec![t]);
    }
    moved.sort_unstable();
    Ok(Chosen { tables: moved, share: moved_load / total })
}

/// Each table's load: the reported busiest ones as reported, the rest of the shard's load
/// spread evenly over the others; one each when nothing is known.
fn table_loads(
    tables: &BTreeSet<TableId>,
    busiest: impl Iterator<Item = (TableId, f64)>,
    shard_units: f64,
) -> Vec<(TableId, f64)> {
    let known: BTreeMap<TableId, f64> =
        busiest.filter(|(t, l)| tables.contains(t) && l.is_finite() && *l >= 0.0).collect();
    let unknown = tables.len() - known.len();
    let rest = (shard_units - known.values().sum::<f64>()).max(0.0);
    let share = if unknown > 0 { rest / unknown as f64 } else { 0.0 };
    let loads: Vec<(TableId, f64)> =
        tables.iter().map(|t| (*t, known.get(t).copied().unwrap_or(share))).collect();
    if loads.iter().map(|(_, l)| l).sum::<f64>() > 0.0 {
        loads
    } else {
        tables.iter().map(|t| (*t, 1.0)).collect()
    }
}

/// Checks tables an operator named for a split: each in the shard, once, some but not all of
/// them, and at most `moved_max`; their share of the load is estimated as `choose` would.
pub fn check_named(
    shard: ShardId,
    tables: &BTreeSet<TableId>,
    named: &[TableId],
    busiest: impl Iterator<Item = (TableId, f64)>,
    shard_units: f64,
    moved_max: usize,
) -> Result<Chosen, String> {
    let set: BTreeSet<TableId> = named.iter().copied().collect();
    if set.len() != named.len() {
        return Err("a table is named twice".into());
    }
    if let Some(t) = set.iter().find(|t| !tables.contains(t)) {
        return Err(format!("table {t} is not in shard {shard}"));
    }
    if set.is_empty() || set.len() == tables.len() {
        return Err(format!(
            "a split moves some of shard {shard}'s {} tables, not none or all",
            tables.len()
        ));
    }
    if set.len() > moved_max {
        return Err(format!(
            "{} tables named; a split moves at most {moved_max} (split_tables_max)",
            set.len()
        ));
    }
    let loads = table_loads(tables, busiest, shard_units);
    let total: f64 = loads.iter().map(|(_, l)| l).sum();
    let moved: f64 = loads.iter().filter(|(t, _)| set.contains(t)).map(|(_, l)| l).sum();
    Ok(Chosen { tables: set.into_iter().collect(), share: moved / total })
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
        let busiest =
            [(TableId(3), 200.0), (TableId(7), 150.0), (TableId(11), 100.0), (TableId(12), 90.0)];
        let chosen = choose(ShardId(0), &tables, busiest.into_iter(), 700.0, 2, 100).unwrap();
        let moved = chosen.tables;
        let mut loads: BTreeMap<TableId, f64> = tables.iter().map(|&t| (t, 10.0)).collect();
        loads.extend(busiest);
        let (moved_load, total) = (load_of(&moved, &loads), 700.0);
        let ratio = moved_load / (total - moved_load);
        assert!(
            (0.7..=1.3).contains(&ratio),
            "pieces of {moved_load} and {}: {ratio:.2}",
            total - moved_load
        );
        assert!((chosen.share - moved_load / total).abs() < 1e-9);
    }

    #[test]
    fn a_shard_cut_into_k_pieces_sheds_a_kth_at_each_split() {
        // 60 tables of 10 units, four of them busy: three pieces of about 400 units each.
        let mut tables = ids(0..60);
        let busiest =
            [(TableId(0), 120.0), (TableId(1), 100.0), (TableId(2), 80.0), (TableId(3), 60.0)];
        let mut loads: BTreeMap<TableId, f64> = tables.iter().map(|&t| (t, 15.0)).collect();
        loads.extend(busiest);
        let total: f64 = loads.values().sum();
        let mut pieces = Vec::new();
        for k in (2..=3).rev() {
            let units: f64 = tables.iter().map(|t| loads[t]).sum();
            let known = busiest.into_iter().filter(|(t, _)| tables.contains(t));
            let moved = choose(ShardId(0), &tables, known, units, k, 1_000).unwrap().tables;
            pieces.push(load_of(&moved, &loads));
            for t in &moved {
                tables.remove(t);
            }
        }
        pieces.push(tables.iter().map(|t| loads[t]).sum());
        let (lo, hi) = (
            pieces.iter().copied().fold(f64::MAX, f64::min),
            pieces.iter().copied().fold(0.0, f64::max),
        );
        assert!(
            hi / lo <= 1.3 / 0.7 && (pieces.iter().sum::<f64>() - total).abs() < 1e-6,
            "pieces {pieces:?}"
        );
    }

    #[test]
    fn without_load_the_table_count_halves_and_the_limit_holds() {
        let moved = choose(ShardId(0), &ids(0..101), std::iter::empty(), 0.0, 2, 1_000).unwrap();
        assert_eq!(moved.tables.len(), 50);
        assert!((moved.share - 50.0 / 101.0).abs() < 1e-9);
        let capped = choose(ShardId(0), &ids(0..101), std::iter::empty(), 0.0, 2, 10).unwrap();
        assert_eq!(capped.tables.len(), 10);
    }

    #[test]
    fn one_table_with_most_of_the_load_makes_a_shard_unsplittable() {
        let err = choose(ShardId(4), &ids(0..10), [(TableId(2), 900.0)].into_iter(), 990.0, 2, 100)
            .unwrap_err();
        assert!(
            err.contains("unsplittable") && err.contains("table 2") && err.contains("91%"),
            "{err}"
        );
        assert!(choose(ShardId(4), &ids(0..1), std::iter::empty(), 5.0, 2, 100)
            .unwrap_err()
            .contains("nothing to split"));
    }

    #[test]
    fn named_tables_are_checked() {
        let tables = ids(0..4);
        let check = |named: &[TableId], max| {
            check_named(ShardId(1), &tables, named, [(TableId(2), 30.0)].into_iter(), 60.0, max)
        };
        let chosen = check(&[TableId(2), TableId(0)], 10).unwrap();
        assert_eq!(chosen.tables, vec![TableId(0), TableId(2)]);
        assert!(
            (chosen.share - 40.0 / 60.0).abs() < 1e-9,
            "table 2 carries 30 of 60, the others 10 each: {}",
            chosen.share
        );
        assert!(check(&[TableId(9)], 10).unwrap_err().contains("not in shard 1"));
        assert!(check(&[TableId(1), TableId(1)], 10).unwrap_err().contains("twice"));
        assert!(check(&(0..4).map(TableId).collect::<Vec<_>>(), 10)
            .unwrap_err()
            .contains("not none or all"));
        assert!(check(&[TableId(1), TableId(2)], 1).unwrap_err().contains("at most 1"));
    }
}
