//! The rules of removing and moving stored readings, without I/O, shared by both backends (as
//! `logic` is for appends): which keys a delete removes and what each caller's key answers,
//! which minute buckets to recompute, and how a relocation ends.
//!
//! Why a relocation is "remove, then append": the moved readings go through the very validation
//! and plan of an append (range, unit, future, retention; roll-up adds), so a move cannot store
//! what an append would refuse; and it ends all or nothing — any moved reading that is not a new
//! key (refused, or landing on a stored reading) rolls the whole transaction back.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::logic::{Key, Resolution};
use crate::{DatastreamId, Move, Outcome, Relocated, TsError, logic::us};

/// The keys of a delete, each once, in the order first named.
pub fn unique_keys(keys: &[Key]) -> Vec<Key> {
    let mut seen = HashSet::new();
    keys.iter().copied().filter(|k| seen.insert(*k)).collect()
}

/// What each named key answers: the value removed at its first naming, `None` for a key with
/// nothing stored or named again.
pub fn answers(keys: &[Key], removed: &HashMap<Key, f64>) -> Vec<Option<f64>> {
    let mut seen = HashSet::new();
    keys.iter().map(|k| if seen.insert(*k) { removed.get(k).copied() } else { None }).collect()
}

/// The minute buckets holding `keys`: the roll-ups to recompute after removing them.
pub fn minutes_of<'a>(keys: impl IntoIterator<Item = &'a Key>) -> BTreeSet<(DatastreamId, i64)> {
    keys.into_iter().map(|(d, t)| (*d, Resolution::Minute.bucket(*t))).collect()
}

/// The move naming a reading an earlier move already names (it cannot be moved twice).
pub fn repeated_from(moves: &[Move]) -> Option<usize> {
    let mut seen = HashSet::new();
    moves.iter().position(|m| !seen.insert((m.datastream, us(m.from))))
}

/// How a relocation ends, from the outcomes of appending the moved readings once their old
/// keys were removed: moved only if every one is a new key.
pub fn relocation_result(outcomes: &[Outcome]) -> Relocated {
    for (index, o) in outcomes.iter().enumerate() {
        match o {
            Outcome::Accepted => {}
            Outcome::Refused { reason } => return Relocated::Refused { index, reason: reason.clone() },
            Outcome::Duplicate | Outcome::Corrected { .. } => return Relocated::Occupied { index },
        }
    }
    Relocated::Moved
}

/// Refuses a delete or relocation of more than [`crate::MAX_BATCH`] readings.
pub fn check_len(len: usize) -> Result<(), TsError> {
    if len > crate::MAX_BATCH {
        return Err(TsError::BatchTooLarge { len, max: crate::MAX_BATCH });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Refusal;
    use jiff::Timestamp;

    #[test]
    fn repeated_keys_are_removed_once_and_answer_once() {
        let keys = [(1, 10), (2, 10), (1, 10), (1, 20)];
        assert_eq!(unique_keys(&keys), vec![(1, 10), (2, 10), (1, 20)]);
        let removed = HashMap::from([((1, 10), 4.5), ((1, 20), 6.0)]);
        assert_eq!(answers(&keys, &removed), vec![Some(4.5), None, None, Some(6.0)]);
    }

    #[test]
    fn minutes_and_repeats() {
        let minute = 60_000_000;
        let m = minutes_of(&[(1, minute + 5), (1, minute + 59_999_999), (1, 2 * minute), (2, 7)]);
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![(1, minute), (1, 2 * minute), (2, 0)]);
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let mv = |d, from| Move { datastream: d, from: t(from), to: t(from + 1), value: None };
        assert_eq!(repeated_from(&[mv(1, 5), mv(2, 5), mv(1, 6)]), None);
        assert_eq!(repeated_from(&[mv(1, 5), mv(2, 5), mv(1, 5)]), Some(2));
    }

    #[test]
    fn a_relocation_moves_only_onto_new_keys() {
        assert_eq!(relocation_result(&[Outcome::Accepted, Outcome::Accepted]), Relocated::Moved);
        assert_eq!(
            relocation_result(&[Outcome::Accepted, Outcome::Corrected { previous: 1.0 }]),
            Relocated::Occupied { index: 1 }
        );
        assert_eq!(relocation_result(&[Outcome::Duplicate]), Relocated::Occupied { index: 0 });
        let reason = Refusal::UnknownDatastream { datastream: 3 };
        assert_eq!(
            relocation_result(&[Outcome::Refused { reason: reason.clone() }, Outcome::Duplicate]),
            Relocated::Refused { index: 0, reason }
        );
        assert!(check_len(crate::MAX_BATCH).is_ok());
        assert!(matches!(check_len(crate::MAX_BATCH + 1), Err(TsError::BatchTooLarge { .. })));
    }
}
