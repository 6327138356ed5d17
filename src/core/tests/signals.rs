//! Read receipts and typing (issue 15): signals that raise events at the others and are
//! never stored, counted unread, or acknowledged; typing expires on the core's clock.

use super::sim::Net;
use crate::core::client::signals::{TYPING_RENEW_MS, TYPING_TTL_MS};
use crate::core::Event;

fn typing(net: &Net, i: usize) -> Vec<bool> {
    net.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Typing { typing, .. } => Some(*typing),
            _ => None,
        })
        .collect()
}

fn reads(net: &Net, i: usize) -> Vec<String> {
    net.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Receipt { message_id, state: "read", .. } => Some(message_id.clone()),
            _ => None,
        })
        .collect()
}

fn unread(net: &Net, i: usize, convo: &str) -> u32 {
    net.nodes[i].client.conversations().into_iter().find(|c| c.id == convo).unwrap().unread
}

#[test]
fn typing_reaches_the_other_side_expires_by_itself_and_is_never_stored() {
    let mut net = Net::default();
    let alice = net.join(501);
    let bob = net.join(502);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(alice, &dm, "hello");
    net.run();
    let (stored, unread_before) = (net.history(bob, &dm).len(), unread(&net, bob, &dm));
    let before = net.publishes;
    net.now += 1;
    let fx = net.nodes[bob].client.set_typing(&dm, true, net.now).unwrap();
    net.apply(bob, fx);
    net.run();
    assert_eq!(typing(&net, alice), [true]);
    // A renewal within 3 s sends nothing; after it, one more.
    let fx = net.nodes[bob].client.set_typing(&dm, true, net.now + 10).unwrap();
    assert!(fx.publish.is_empty());
    assert_eq!(net.publishes, before + 1);
    // No stop comes: it ends by itself at alice 6 s after the last start.
    net.advance(TYPING_TTL_MS + 10);
    assert_eq!(typing(&net, alice), [true, false]);
    // Started again and stopped: both reach alice at once.
    net.now += TYPING_RENEW_MS;
    for t in [true, false] {
        let fx = net.nodes[bob].client.set_typing(&dm, t, net.now).unwrap();
        net.apply(bob, fx);
        net.run();
    }
    assert_eq!(typing(&net, alice), [true, false, true, false]);
    assert_eq!(net.history(bob, &dm).len(), stored, "nothing stored at bob");
    assert_eq!(net.history(alice, &dm).len(), 1, "nor at alice");
    assert_eq!(unread(&net, bob, &dm), unread_before);
    assert_eq!(unread(&net, alice, &dm), 0, "typing is never unread");
    assert!(net.texts(alice).is_empty() && net.texts(bob).len() == 1, "never a message");
}

#[test]
fn a_read_receipt_reaches_the_sender_once_and_only_for_its_own_message() {
    let mut net = Net::default();
    let alice = net.join(511);
    let bob = net.join(512);
    let carol = net.join(513);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    let m1 = net.send(alice, &dm, "read me");
    net.run();
    assert_eq!(unread(&net, bob, &dm), 1);
    net.now += 1;
    let fx = net.nodes[bob].client.mark_read_at(&dm, &m1, net.now).unwrap();
    net.apply(bob, fx);
    net.run();
    assert_eq!(unread(&net, bob, &dm), 0);
    assert_eq!(reads(&net, alice), std::slice::from_ref(&m1));
    let before = net.publishes;
    let fx = net.nodes[bob].client.mark_read_at(&dm, &m1, net.now + 1).unwrap();
    assert!(fx.publish.is_empty(), "the same receipt is not sent twice");
    assert_eq!(net.publishes, before);
    assert_eq!(net.history(alice, &dm).len(), 1, "a receipt is no message");
    // In a group, a receipt for alice's message raises nothing at carol.
    let g = net.create_group(alice, "g", &[bob, carol], None);
    net.advance(super::group::WINDOW);
    let gm = net.send(alice, &g, "group message");
    net.run();
    net.now += 1;
    let fx = net.nodes[bob].client.mark_read_at(&g, &gm, net.now).unwrap();
    net.apply(bob, fx);
    net.run();
    assert_eq!(reads(&net, alice), [m1, gm]);
    assert!(reads(&net, carol).is_empty(), "not carol's message");
}

#[test]
fn signals_off_stale_typing_and_blocked_senders_raise_nothing() {
    let mut net = Net::default();
    let alice = net.join(521);
    let bob = net.join(522);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    let m1 = net.send(alice, &dm, "hi");
    net.run();
    // Bob turns signals off: marking read clears unread and sends nothing; typing neither.
    net.nodes[bob].client.set_signals(false);
    let before = net.publishes;
    net.now += 1;
    let fx = net.nodes[bob].client.mark_read_at(&dm, &m1, net.now).unwrap();
    net.apply(bob, fx);
    let fx = net.nodes[bob].client.set_typing(&dm, true, net.now).unwrap();
    net.apply(bob, fx);
    assert_eq!((net.publishes, unread(&net, bob, &dm)), (before, 0));
    net.nodes[bob].client.set_signals(true);
    // A typing start read back from the store long after it was sent is dropped.
    net.set_online(alice, false);
    net.now += 1;
    let fx = net.nodes[bob].client.set_typing(&dm, true, net.now).unwrap();
    net.apply(bob, fx);
    net.now += TYPING_TTL_MS * 2;
    net.nodes[alice].queue.clear();
    net.set_online(alice, true);
    net.run();
    assert!(typing(&net, alice).is_empty(), "{:?}", typing(&net, alice));
    // A blocked account's typing raises nothing.
    let bob_id = net.account(bob);
    let fx = net.nodes[alice].client.block(&bob_id).unwrap();
    net.apply(alice, fx);
    net.now += TYPING_RENEW_MS;
    let fx = net.nodes[bob].client.set_typing(&dm, true, net.now).unwrap();
    net.apply(bob, fx);
    net.run();
    assert!(typing(&net, alice).is_empty());
    assert!(net.errors(alice).is_empty(), "{:?}", net.errors(alice));
}
