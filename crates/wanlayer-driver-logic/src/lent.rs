//! Giving a lent receive chain back as it came.
//!
//! With `NDIS_RECEIVE_FLAGS_RESOURCES` the NBLs NDIS indicates are NDIS's again when
//! `FilterReceiveNetBufferLists` returns, and must come back as they came: the same NBLs, in the
//! same order, with the same `Next` links. Handing NBLs on rewrites their links, so the handler
//! records the chain first (the NBL pointers in order, at most [`RECORDED`] of them, on the
//! stack) and afterwards links what the engine gave back again ([`plan`], [`links`]).
//!
//! The engine gives back every lent NBL in the order it received them (its contract, checked by
//! the simulator), so a chain longer than the record is handed back as the engine linked it, with
//! its count and head checked. A mismatch is an engine bug: it is reported ([`LentFault`]) and
//! the NBLs go back all the same, as they came back.

/// NBLs of a lent chain whose order the receive handler records (256 bytes of stack on 64-bit);
/// NdisWan indicates one or a few at a time.
pub const RECORDED: usize = 32;

/// How the engine's answer differs from what was lent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LentFault {
    /// It gave back another number of NBLs.
    CountChanged {
        /// NBLs lent.
        lent: usize,
        /// NBLs given back.
        returned: usize,
    },
    /// As many NBLs, but not the ones lent.
    DifferentNbls,
    /// A chain longer than the record came back with another NBL at its head.
    HeadMoved,
}

/// How to link the NBLs before NDIS takes them back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relink<'a, T> {
    /// Write these links: each NBL's `Next` to the one after it, the last one's to the end of the
    /// chain ([`links`]).
    Order(&'a [T]),
    /// Leave the chain as the engine linked it (longer than the record: that order is the
    /// original one, by the engine's contract).
    AsReturned,
}

/// The plan for a lent chain of `lent` NBLs: `recorded` is the record made before the engine
/// saw it (the whole chain when `lent <= RECORDED`, else its first NBLs); `returned` is what the
/// engine gave back in its order (at most [`RECORDED`] of them: at least the head when the chain
/// was longer than the record) and `returned_count` how many it gave back in all.
///
/// With a whole record, the recorded order is restored when the engine gave back exactly the
/// NBLs lent; otherwise the engine's order is used (and the fault reported), so no NBL it gave
/// back is lost from the chain.
pub fn plan<'a, T: PartialEq>(
    lent: usize,
    recorded: &'a [T],
    returned_count: usize,
    returned: &'a [T],
) -> (Relink<'a, T>, Option<LentFault>) {
    if recorded.len() < lent {
        let fault = if returned_count != lent {
            Some(LentFault::CountChanged { lent, returned: returned_count })
        } else if returned.first() != recorded.first() {
            Some(LentFault::HeadMoved)
        } else {
            None
        };
        return (Relink::AsReturned, fault);
    }
    if returned_count != lent {
        return (Relink::Order(returned), Some(LentFault::CountChanged { lent, returned: returned_count }));
    }
    if !recorded.iter().all(|nbl| returned.contains(nbl)) {
        return (Relink::Order(returned), Some(LentFault::DifferentNbls));
    }
    (Relink::Order(recorded), None)
}

/// The `(nbl, next)` pairs that link `order` into a chain ending in `end` (null).
pub fn links<T: Copy>(order: &[T], end: T) -> impl Iterator<Item = (T, T)> + '_ {
    order.iter().enumerate().map(move |(index, &nbl)| (nbl, order.get(index + 1).copied().unwrap_or(end)))
}

/// True when `NumberOfNetBufferLists` disagrees with the chain NDIS passed (reported; the chain
/// is what the filter handles and gives back).
pub fn count_disagrees(indicated: u32, chain_len: usize) -> bool {
    usize::try_from(indicated) != Ok(chain_len)
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;

    #[test]
    fn a_chain_given_back_in_another_order_is_linked_as_it_was_lent() {
        let lent = [1, 2, 3, 4];
        let (relink, fault) = plan(4, &lent, 4, &[3, 1, 4, 2]);
        assert_eq!((relink, fault), (Relink::Order(&lent[..]), None));
        let pairs: Vec<_> = links(&lent, 0).collect();
        assert_eq!(pairs, [(1, 2), (2, 3), (3, 4), (4, 0)]);
    }

    #[test]
    fn one_nbl_is_terminated() {
        assert_eq!(plan(1, &[7], 1, &[7]), (Relink::Order(&[7][..]), None));
        assert_eq!(links(&[7], 0).collect::<Vec<_>>(), [(7, 0)]);
        assert_eq!(links::<u8>(&[], 0).count(), 0);
    }

    #[test]
    fn a_different_count_keeps_every_nbl_given_back() {
        let returned = [1, 2, 3];
        assert_eq!(plan(2, &[1, 2], 3, &returned), (Relink::Order(&returned[..]), Some(LentFault::CountChanged { lent: 2, returned: 3 })));
        assert_eq!(plan(2, &[1, 2], 1, &[2]), (Relink::Order(&[2][..]), Some(LentFault::CountChanged { lent: 2, returned: 1 })));
    }

    #[test]
    fn the_same_count_of_other_nbls_is_a_fault() {
        // A duplicate in place of one that was lent.
        assert_eq!(plan(3, &[1, 2, 3], 3, &[1, 1, 3]), (Relink::Order(&[1, 1, 3][..]), Some(LentFault::DifferentNbls)));
        assert_eq!(plan(2, &[1, 2], 2, &[8, 9]).1, Some(LentFault::DifferentNbls));
    }

    #[test]
    fn chains_longer_than_the_record_keep_the_engines_links_and_check_count_and_head() {
        let recorded: Vec<usize> = (1..=RECORDED).collect();
        let lent = RECORDED + 5;
        assert_eq!(plan(lent, &recorded, lent, &[1]), (Relink::AsReturned, None));
        assert_eq!(plan(lent, &recorded, lent, &[2]), (Relink::AsReturned, Some(LentFault::HeadMoved)));
        assert_eq!(plan(lent, &recorded, lent, &[]), (Relink::AsReturned, Some(LentFault::HeadMoved)));
        assert_eq!(plan(lent, &recorded, lent - 1, &[1]), (Relink::AsReturned, Some(LentFault::CountChanged { lent, returned: lent - 1 })));
    }

    #[test]
    fn exactly_a_full_record_is_restored_from_it() {
        let recorded: Vec<usize> = (1..=RECORDED).collect();
        let reversed: Vec<usize> = recorded.iter().rev().copied().collect();
        assert_eq!(plan(RECORDED, &recorded, RECORDED, &reversed), (Relink::Order(&recorded[..]), None));
    }

    #[test]
    fn indicated_counts_are_compared_with_the_chain() {
        assert!(!count_disagrees(3, 3));
        assert!(count_disagrees(2, 3));
        assert!(count_disagrees(0, 1));
        assert!(count_disagrees(u32::MAX, 0));
    }
}
