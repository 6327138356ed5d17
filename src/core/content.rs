//! What a message carries: its content type, and what it refers to (issue 15).
//!
//! Plain text travels as raw UTF-8 with no frame, as libchat and its apps send it, so
//! DirectV1 interop holds. Everything else travels in a LIP-240 `ContentFrame`
//! (`domain_id`, `tag`, `payload`) under our own domain, since the logos-lips registry
//! (domain 1) defines none of these types yet. The registry of our tags:
//!
//! | tag | payload | what it is |
//! |---|---|---|
//! | 1 | `Typed { content_type, body }` | any content type by name (MIME or an app's own) |
//! | 2 | `Reply { to, content_type, body }` | content that answers message `to` |
//! | 3 | `Reaction { to, emoji, remove }` | a reaction to message `to` (`REACTION_TYPE`) |
//! | 4 | `ReadReceipt { ids }` | the reader has read these messages (a signal) |
//! | 5 | `Typing { typing }` | the sender is typing, or stopped (a signal) |
//!
//! Signals (4, 5) travel with no Lamport time and no causal history, as SDS ephemeral
//! messages: never stored, never counted unread, never acknowledged or repaired.
//!
//! A frame of another domain, or of a tag we do not know, reaches the app as its payload
//! under `application/x-content-frame; domain=D; tag=T`, so nothing is lost; bytes that
//! are not a frame are raw content (text if they are UTF-8).

use prost::Message as _;

use super::error::{CoreError, Result};

/// Our domain in LIP-240's `ContentFrame` ("LC" and a version).
pub const DOMAIN: u32 = 0x4c43_0001;
/// Plain text: raw UTF-8 on the wire.
pub const TEXT: &str = "text/plain";
/// Bytes that are not text and name no type.
pub const BYTES: &str = "application/octet-stream";
/// The content type a reaction arrives with (its body is the emoji, UTF-8).
pub const REACTION_TYPE: &str = "application/vnd.logos.reaction";
/// The longest content type name (bytes).
pub const MAX_TYPE_LEN: usize = 128;
/// The longest reaction (bytes of UTF-8).
pub const MAX_REACTION_LEN: usize = 64;
/// The longest message id a reference may name (ours are 64 hex characters).
pub const MAX_REF_LEN: usize = 128;

/// The frame tags under [`DOMAIN`].
pub mod tag {
    /// Content of a named type.
    pub const TYPED: u32 = 1;
    /// A reply.
    pub const REPLY: u32 = 2;
    /// A reaction.
    pub const REACTION: u32 = 3;
    /// A read receipt (a signal).
    pub const READ: u32 = 4;
    /// Typing (a signal).
    pub const TYPING: u32 = 5;
}

/// The most message ids one read receipt names.
pub const MAX_READ_IDS: usize = 16;

#[derive(Clone, PartialEq, prost::Message)]
struct ReadReceipt {
    #[prost(string, repeated, tag = "1")]
    ids: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypingFrame {
    #[prost(bool, tag = "1")]
    typing: bool,
}

/// What a signal says (never stored as a message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// The sender read these messages.
    Read(Vec<String>),
    /// The sender is typing (or stopped).
    Typing(bool),
}

/// The bytes a signal travels as.
pub fn encode_signal(s: &Signal) -> Vec<u8> {
    let (tag, payload) = match s {
        Signal::Read(ids) => {
            let ids = ids.iter().filter(|i| valid_ref(i)).take(MAX_READ_IDS).cloned().collect();
            (tag::READ, ReadReceipt { ids }.encode_to_vec())
        }
        Signal::Typing(t) => (tag::TYPING, TypingFrame { typing: *t }.encode_to_vec()),
    };
    ContentFrame { domain_id: DOMAIN, tag, payload }.encode_to_vec()
}

/// The signal these bytes are, if they are one.
pub fn decode_signal(wire: &[u8]) -> Option<Signal> {
    let f = ContentFrame::decode(wire).ok().filter(|f| f.domain_id == DOMAIN)?;
    match f.tag {
        tag::READ => {
            let r = ReadReceipt::decode(f.payload.as_slice()).ok()?;
            let ids: Vec<String> = r.ids.into_iter().filter(|i| valid_ref(i)).take(MAX_READ_IDS).collect();
            (!ids.is_empty()).then_some(Signal::Read(ids))
        }
        tag::TYPING => TypingFrame::decode(f.payload.as_slice()).ok().map(|t| Signal::Typing(t.typing)),
        _ => None,
    }
}

/// LIP-240's frame.
#[derive(Clone, PartialEq, prost::Message)]
struct ContentFrame {
    #[prost(uint32, tag = "1")]
    domain_id: u32,
    #[prost(uint32, tag = "2")]
    tag: u32,
    #[prost(bytes = "vec", tag = "3")]
    payload: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Typed {
    #[prost(string, tag = "1")]
    content_type: String,
    #[prost(bytes = "vec", tag = "2")]
    body: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Reply {
    #[prost(string, tag = "1")]
    to: String,
    #[prost(string, tag = "2")]
    content_type: String,
    #[prost(bytes = "vec", tag = "3")]
    body: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Reaction {
    #[prost(string, tag = "1")]
    to: String,
    #[prost(string, tag = "2")]
    emoji: String,
    #[prost(bool, tag = "3")]
    remove: bool,
}

/// A message's content as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Content {
    /// Its type ("text/plain", a MIME type, or an app's own name).
    pub content_type: String,
    /// Its bytes.
    pub body: Vec<u8>,
    /// The message it answers or reacts to.
    pub reply_to: Option<String>,
    /// A reaction taken back (reactions only).
    pub remove: bool,
}

impl Content {
    /// Plain text.
    pub fn text(s: &str) -> Self {
        Content { content_type: TEXT.into(), body: s.as_bytes().to_vec(), ..Content::default() }
    }

    /// A reaction to a message (`remove`: taken back).
    pub fn reaction(to: &str, emoji: &str, remove: bool) -> Self {
        Content {
            content_type: REACTION_TYPE.into(),
            body: emoji.as_bytes().to_vec(),
            reply_to: Some(to.into()),
            remove,
        }
    }
}

/// Whether a content type name is acceptable: 1 to 128 visible ASCII characters (a MIME
/// type with parameters, or an app's own name such as `com.example.poll`).
pub fn valid_type(t: &str) -> bool {
    !t.is_empty() && t.len() <= MAX_TYPE_LEN && t.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn valid_ref(r: &str) -> bool {
    !r.is_empty() && r.len() <= MAX_REF_LEN && r.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The bytes a content travels as. Plain text with no reference goes raw; the rest in a
/// frame. A bad type name, a reference that is not a message id, text that is not
/// UTF-8, or a reaction without a target or over 64 bytes is `INVALID_ARGUMENT`.
pub fn encode(c: &Content) -> Result<Vec<u8>> {
    let bad = |m: &str| Err(CoreError::InvalidArgument(m.to_owned()));
    if !valid_type(&c.content_type) {
        return bad("a content type is 1 to 128 visible ASCII characters");
    }
    if c.reply_to.as_deref().is_some_and(|r| !valid_ref(r)) {
        return bad("a reply or reaction names a message id");
    }
    if c.content_type == TEXT && std::str::from_utf8(&c.body).is_err() {
        return bad("text/plain content must be UTF-8");
    }
    let (tag, payload) = match (c.content_type.as_str(), &c.reply_to) {
        (REACTION_TYPE, Some(to)) => {
            let Ok(emoji) = std::str::from_utf8(&c.body) else { return bad("a reaction is UTF-8") };
            if emoji.is_empty() || emoji.len() > MAX_REACTION_LEN {
                return bad("a reaction is 1 to 64 bytes");
            }
            let r = Reaction { to: to.clone(), emoji: emoji.to_owned(), remove: c.remove };
            (tag::REACTION, r.encode_to_vec())
        }
        (REACTION_TYPE, None) => return bad("a reaction names the message it reacts to"),
        (TEXT, None) => return Ok(c.body.clone()),
        (t, Some(to)) => (
            tag::REPLY,
            Reply { to: to.clone(), content_type: t.to_owned(), body: c.body.clone() }.encode_to_vec(),
        ),
        (t, None) => (tag::TYPED, Typed { content_type: t.to_owned(), body: c.body.clone() }.encode_to_vec()),
    };
    Ok(ContentFrame { domain_id: DOMAIN, tag, payload }.encode_to_vec())
}

/// What arrived, as the app sees it. Never fails: what is not one of our frames is raw
/// content, or another domain's frame under a type that names it.
pub fn decode(wire: &[u8]) -> Content {
    let raw = || Content {
        content_type: if std::str::from_utf8(wire).is_ok() { TEXT } else { BYTES }.to_owned(),
        body: wire.to_vec(),
        ..Content::default()
    };
    // A frame has all three fields, and nothing else; raw UTF-8 text starts with a
    // printable character, which is not the frame's first byte (field 1, varint: 0x08).
    let Ok(f) = ContentFrame::decode(wire) else { return raw() };
    if wire.first() != Some(&0x08) || f.domain_id == 0 || f.tag == 0 || f.encode_to_vec() != wire {
        return raw();
    }
    let foreign = |f: &ContentFrame| Content {
        content_type: format!("application/x-content-frame; domain={}; tag={}", f.domain_id, f.tag),
        body: f.payload.clone(),
        ..Content::default()
    };
    if f.domain_id != DOMAIN {
        return foreign(&f);
    }
    let ok_ref = |r: &str| valid_ref(r).then(|| r.to_owned());
    let known = match f.tag {
        tag::TYPED => Typed::decode(f.payload.as_slice())
            .ok()
            .filter(|t| valid_type(&t.content_type))
            .map(|t| Content { content_type: t.content_type, body: t.body, ..Content::default() }),
        tag::REPLY => {
            Reply::decode(f.payload.as_slice()).ok().filter(|r| valid_type(&r.content_type)).and_then(|r| {
                let to = ok_ref(&r.to)?;
                Some(Content {
                    content_type: r.content_type,
                    body: r.body,
                    reply_to: Some(to),
                    remove: false,
                })
            })
        }
        tag::REACTION => Reaction::decode(f.payload.as_slice())
            .ok()
            .filter(|r| !r.emoji.is_empty() && r.emoji.len() <= MAX_REACTION_LEN)
            .and_then(|r| {
                let to = ok_ref(&r.to)?;
                Some(Content::reaction(&to, &r.emoji, r.remove))
            }),
        _ => None,
    };
    known.unwrap_or_else(|| foreign(&f))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn plain_text_travels_raw_and_everything_else_round_trips_in_a_frame() {
        assert_eq!(encode(&Content::text("héllo")).unwrap(), "héllo".as_bytes());
        assert_eq!(decode("héllo".as_bytes()), Content::text("héllo"));
        let cases = [
            Content {
                content_type: "application/json".into(),
                body: br#"{"a":1}"#.to_vec(),
                ..Content::default()
            },
            Content { content_type: "text/markdown".into(), body: b"**hi**".to_vec(), ..Content::default() },
            Content { content_type: "com.example.poll".into(), body: vec![0, 255, 1], ..Content::default() },
            Content { content_type: BYTES.into(), body: b"valid utf-8 bytes".to_vec(), ..Content::default() },
            Content { content_type: BYTES.into(), body: vec![], ..Content::default() },
            Content {
                content_type: TEXT.into(),
                body: b"a reply".to_vec(),
                reply_to: Some(ID.into()),
                ..Content::default()
            },
            Content::reaction(ID, "👍", false),
            Content::reaction(ID, "👍", true),
        ];
        for c in cases {
            let wire = encode(&c).unwrap();
            assert_eq!(wire[0], 0x08, "{c:?} is framed");
            assert_eq!(decode(&wire), c);
        }
    }

    #[test]
    fn raw_bytes_and_foreign_frames_reach_the_app_as_what_they_are() {
        assert_eq!(decode(&[0xff, 0]).content_type, BYTES);
        assert_eq!(decode(b"").content_type, TEXT);
        // Text that starts with a tab, a digit, a brace: not frames.
        for t in ["\tindented", "8 apples", "{\"json\":true}", "\u{8}x"] {
            assert_eq!(decode(t.as_bytes()), Content::text(t), "{t:?}");
        }
        let other = ContentFrame { domain_id: 1, tag: 7, payload: b"lip".to_vec() }.encode_to_vec();
        let c = decode(&other);
        assert_eq!(
            (c.content_type.as_str(), c.body.as_slice()),
            ("application/x-content-frame; domain=1; tag=7", &b"lip"[..])
        );
        let unknown_tag = ContentFrame { domain_id: DOMAIN, tag: 99, payload: b"x".to_vec() }.encode_to_vec();
        assert!(decode(&unknown_tag).content_type.contains("tag=99"));
        // One of our frames whose payload does not decode as its tag's: foreign, not lost.
        let broken =
            ContentFrame { domain_id: DOMAIN, tag: tag::REACTION, payload: vec![0xff] }.encode_to_vec();
        assert!(decode(&broken).content_type.starts_with("application/x-content-frame"));
    }

    #[test]
    fn bad_content_is_refused_at_send() {
        let bad = [
            Content { content_type: String::new(), ..Content::default() },
            Content { content_type: "x".repeat(129), ..Content::default() },
            Content { content_type: "bad\ntype".into(), ..Content::default() },
            Content { content_type: TEXT.into(), body: vec![0xff], ..Content::default() },
            Content { content_type: TEXT.into(), reply_to: Some("not an id!".into()), ..Content::default() },
            Content { content_type: REACTION_TYPE.into(), body: "👍".into(), ..Content::default() },
            Content::reaction(ID, "", false),
            Content::reaction(ID, &"x".repeat(65), false),
        ];
        for c in bad {
            assert!(matches!(encode(&c), Err(CoreError::InvalidArgument(_))), "{c:?}");
        }
    }

    #[test]
    fn signals_round_trip_and_are_never_content() {
        for s in [Signal::Read(vec![ID.into()]), Signal::Typing(true), Signal::Typing(false)] {
            let wire = encode_signal(&s);
            assert_eq!(decode_signal(&wire), Some(s));
            assert!(
                decode(&wire).content_type.starts_with("application/x-content-frame"),
                "not a chat message"
            );
        }
        assert_eq!(decode_signal(&encode_signal(&Signal::Read(vec!["bad id!".into()]))), None);
        let many: Vec<String> = (0..40).map(|i| format!("{i:064x}")).collect();
        let Some(Signal::Read(ids)) = decode_signal(&encode_signal(&Signal::Read(many))) else { panic!() };
        assert_eq!(ids.len(), MAX_READ_IDS);
        assert_eq!(decode_signal(b"hello"), None);
        assert_eq!(decode_signal(&encode(&Content::text("x")).unwrap()), None);
    }

    #[test]
    fn mutated_frames_never_panic_and_always_name_a_type() {
        let wire = encode(&Content {
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
            reply_to: Some(ID.into()),
            ..Content::default()
        })
        .unwrap();
        for i in 0..wire.len() {
            for bit in 0..8 {
                let mut w = wire.clone();
                w[i] ^= 1 << bit;
                let c = decode(&w);
                assert!(!c.content_type.is_empty());
            }
        }
    }
}
