//! Content types, replies and reactions through the core (issue 15): they arrive as
//! sent in direct chats and groups, survive a restart, and plain text stays raw.

use super::sim::Net;
use crate::core::content::{Content, REACTION_TYPE, TEXT};
use crate::core::{ChatMessage, Event};

fn received(net: &Net, i: usize) -> Vec<ChatMessage> {
    net.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if !m.outgoing => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn send(net: &mut Net, i: usize, convo: &str, c: &Content) -> String {
    net.now += 1;
    let (id, fx) = net.nodes[i].client.send_content(convo, c, net.now).unwrap();
    net.apply(i, fx);
    id
}

#[test]
fn content_types_replies_and_reactions_arrive_as_sent_and_survive_a_restart() {
    let mut net = Net::default();
    let alice = net.join(401);
    let bob = net.join(402);
    let carol = net.join(403);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    let json = Content {
        content_type: "application/json".into(),
        body: br#"{"n":1}"#.to_vec(),
        ..Content::default()
    };
    let first = send(&mut net, alice, &dm, &json);
    let app =
        Content { content_type: "com.example.poll".into(), body: vec![0, 1, 255], ..Content::default() };
    send(&mut net, alice, &dm, &app);
    net.run();
    let reply = Content { reply_to: Some(first.clone()), ..Content::text("answering") };
    let reply_id = send(&mut net, bob, &dm, &reply);
    send(&mut net, bob, &dm, &Content::reaction(&first, "🎉", false));
    net.run();
    let at_bob = received(&net, bob);
    assert_eq!(at_bob.len(), 2);
    assert_eq!(
        (at_bob[0].content_type.as_str(), at_bob[0].content.as_slice()),
        ("application/json", &br#"{"n":1}"#[..])
    );
    assert_eq!(
        (at_bob[1].content_type.as_str(), at_bob[1].content.as_slice()),
        ("com.example.poll", &[0u8, 1, 255][..])
    );
    let at_alice = received(&net, alice);
    assert_eq!(at_alice[0].id, reply_id);
    assert_eq!(
        (at_alice[0].content_type.as_str(), at_alice[0].reply_to.as_deref()),
        (TEXT, Some(first.as_str()))
    );
    assert_eq!(at_alice[1].content_type, REACTION_TYPE);
    assert_eq!(
        (at_alice[1].content.as_slice(), at_alice[1].reply_to.as_deref()),
        ("🎉".as_bytes(), Some(first.as_str()))
    );
    // The sender's own history holds what it sent as sent.
    let own = net.history(bob, &dm);
    assert!(own
        .iter()
        .any(|m| m.outgoing && m.reply_to.as_deref() == Some(first.as_str()) && m.content == b"answering"));
    // After a restart, both histories still say what each message is.
    net.restart(alice);
    let h = net.history(alice, &dm);
    let by_id = |id: &str| h.iter().find(|m| m.id == id).unwrap().clone();
    assert_eq!(by_id(&first).content_type, "application/json");
    assert_eq!(by_id(&reply_id).reply_to.as_deref(), Some(first.as_str()));
    assert!(h.iter().any(|m| m.content_type == REACTION_TYPE && !m.remove));

    // In a group, the same.
    let g = net.create_group(alice, "g", &[bob, carol], None);
    net.advance(super::group::WINDOW);
    let md =
        Content { content_type: "text/markdown".into(), body: b"**bold**".to_vec(), ..Content::default() };
    let in_group = send(&mut net, alice, &g, &md);
    net.run();
    send(&mut net, carol, &g, &Content::reaction(&in_group, "👍", true));
    net.run();
    let got = received(&net, bob);
    assert!(got.iter().any(|m| m.id == in_group && m.content_type == "text/markdown"));
    assert!(got.iter().any(|m| m.content_type == REACTION_TYPE
        && m.remove
        && m.reply_to.as_deref() == Some(in_group.as_str())));
}

#[test]
fn plain_text_stays_raw_on_the_wire_and_bad_content_is_refused_with_nothing_sent() {
    let mut net = Net::default();
    let alice = net.join(411);
    let bob = net.join(412);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    // What the core's raw `send` and `send_content` of text put on the wire is the same
    // kind of thing: bob reads both as text/plain, as a libchat client would.
    net.send(alice, &dm, "raw");
    send(&mut net, alice, &dm, &Content::text("typed"));
    net.run();
    let got = received(&net, bob);
    assert!(got.iter().all(|m| m.content_type == TEXT && m.reply_to.is_none()), "{got:?}");
    let before = net.publishes;
    for bad in [
        Content { content_type: "bad\ttype".into(), ..Content::default() },
        Content { content_type: TEXT.into(), body: vec![0xff], ..Content::default() },
        Content { content_type: REACTION_TYPE.into(), body: b"x".to_vec(), ..Content::default() },
    ] {
        let e = net.nodes[alice].client.send_content(&dm, &bad, net.now + 1).unwrap_err();
        assert_eq!(e.code(), crate::core::ErrorCode::InvalidArgument);
    }
    assert_eq!(net.publishes, before, "nothing published");
    assert_eq!(net.history(alice, &dm).len(), 2, "nothing stored");
}

#[test]
fn the_conversation_list_is_ordered_by_activity_with_a_preview_across_a_restart() {
    let mut net = Net::default();
    let alice = net.join(421);
    let bob = net.join(422);
    let carol = net.join(423);
    let with_bob = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    let with_carol = net.start_direct(alice, &net.account(carol)).unwrap();
    net.run();
    let order = |net: &Net| -> Vec<String> {
        net.nodes[alice].client.conversations().into_iter().map(|c| c.id).collect()
    };
    assert_eq!(order(&net), [with_carol.clone(), with_bob.clone()], "the newer chat first");
    net.send(bob, &with_bob, &"long ".repeat(40));
    net.run();
    assert_eq!(order(&net), [with_bob.clone(), with_carol.clone()], "bob's message moves his chat up");
    send(
        &mut net,
        carol,
        &with_carol,
        &Content { content_type: "image/png".into(), body: vec![1, 2], ..Content::default() },
    );
    net.run();
    net.restart(alice);
    let list = net.nodes[alice].client.conversations();
    assert_eq!(list.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), [with_carol.clone(), with_bob.clone()]);
    assert_eq!(list[0].last_message.as_deref(), Some("[image/png]"));
    assert_eq!(list[1].last_message.as_ref().map(|p| p.chars().count()), Some(80));
    assert_eq!((list[0].unread, list[1].unread), (1, 1));
}
