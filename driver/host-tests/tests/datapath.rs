//! The data-path handlers in the loop: sends passed down and completed, receives indicated and
//! returned, lent chains (shorter and longer than the driver's record of them) handed back linked
//! as they came, and a receive whose `NumberOfNetBufferLists` disagrees with its chain — NBLs,
//! NET_BUFFERs and MDLs in `wanlayer-ndis` layouts, each frame split over two MDLs with an offset
//! into the first.
//!
//! Natively: the driver built for the host (the same scenarios run against the images in
//! `driver/emulator`).
#![cfg(not(target_os = "windows"))]

use wanlayer_driver_host_tests::native;
use wanlayer_driver_host_tests::scenarios::datapath;

#[test]
fn lent_receives_come_back_linked_as_they_came() {
    datapath::lent_receives_come_back_linked_as_they_came(&native());
}

#[test]
fn a_receive_whose_count_disagrees_with_its_chain_is_handled_by_the_chain() {
    datapath::a_receive_whose_count_disagrees_with_its_chain_is_handled_by_the_chain(&native());
}

#[test]
fn owned_receives_are_returned_and_sends_completed_through_the_drivers_handlers() {
    datapath::owned_receives_are_returned_and_sends_completed_through_the_drivers_handlers(&native());
}

#[test]
fn nbls_with_several_net_buffers_pass_through_whole() {
    datapath::nbls_with_several_net_buffers_pass_through_whole(&native());
}
