//! The TLS shape of key packages and ratchet trees from the network, walked before
//! openmls decodes them (issue 12, found by fuzzing). openmls 0.8.1's slice decoder of an
//! extension list counts what it consumed by re-encoding what it decoded, and slices the
//! rest out of range when that comes out longer: a panic, which is a trap in wasm. A
//! ratchet-tree extension decodes into a full tree whose encoding can be far longer than
//! the bytes it came from (two crashes in `fuzz/corpus/mls/`, the second past any
//! padding). In a key package or a leaf node only application_id (1), last_resort (10)
//! and types openmls keeps as raw bytes belong (RFC 9420 §17.3); the types it decodes
//! structurally, 2 to 6 (ratchet_tree, required_capabilities, external_pub,
//! external_senders, app_data_dictionary), are refused here, so nothing of a leaf's
//! extensions can grow on re-encoding. The walk checks every length against the bytes
//! present, and that nothing trails.

use super::mls::take_vec;
use crate::core::error::{CoreError, Result};

fn bad(why: &'static str) -> CoreError {
    CoreError::decode("mls shape", why)
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    let (head, rest) = b.split_at_checked(n).ok_or_else(|| bad("truncated"))?;
    *b = rest;
    Ok(head)
}

fn take_u8(b: &mut &[u8]) -> Result<u8> {
    let (first, rest) = b.split_first().ok_or_else(|| bad("truncated"))?;
    *b = rest;
    Ok(*first)
}

fn take_u16(b: &mut &[u8]) -> Result<u16> {
    let (head, rest) = b.split_first_chunk::<2>().ok_or_else(|| bad("truncated"))?;
    *b = rest;
    Ok(u16::from_be_bytes(*head))
}

/// `Extension extensions<V>`: each a type and its data; the structurally decoded types
/// are refused.
fn extensions(b: &mut &[u8]) -> Result<()> {
    let mut list = take_vec(b)?;
    while !list.is_empty() {
        if (2..=6).contains(&take_u16(&mut list)?) {
            return Err(bad("a group extension in a key package or leaf node"));
        }
        take_vec(&mut list)?;
    }
    Ok(())
}

/// `LeafNode` (RFC 9420 §7.2).
fn leaf_node(b: &mut &[u8]) -> Result<()> {
    take_vec(b)?; // encryption_key
    take_vec(b)?; // signature_key
    take(b, 2)?; // credential_type
    take_vec(b)?; // its content (identity, or the certificates)
    for _ in 0..5 {
        take_vec(b)?; // capabilities: versions, cipher_suites, extensions, proposals, credentials
    }
    match take_u8(b)? {
        1 => drop(take(b, 16)?), // key_package: lifetime
        2 => {}                  // update
        3 => drop(take_vec(b)?), // commit: parent_hash
        _ => return Err(bad("unknown leaf node source")),
    }
    extensions(b)?;
    take_vec(b)?; // signature
    Ok(())
}

/// Checks a `KeyPackage` (RFC 9420 §10) before openmls decodes it.
pub fn check_key_package(bytes: &[u8]) -> Result<()> {
    let mut b = bytes;
    take(&mut b, 4)?; // version, cipher_suite
    take_vec(&mut b)?; // init_key
    leaf_node(&mut b)?;
    extensions(&mut b)?;
    take_vec(&mut b)?; // signature
    if !b.is_empty() {
        return Err(bad("trailing bytes after a key package"));
    }
    Ok(())
}

/// Checks a ratchet tree (`optional<Node> ratchet_tree<V>`, RFC 9420 §12.4.3.3).
pub fn check_ratchet_tree(bytes: &[u8]) -> Result<()> {
    let mut b = bytes;
    let mut nodes = take_vec(&mut b)?;
    if !b.is_empty() {
        return Err(bad("trailing bytes after a ratchet tree"));
    }
    while !nodes.is_empty() {
        match take_u8(&mut nodes)? {
            0 => {}
            1 => match take_u8(&mut nodes)? {
                1 => leaf_node(&mut nodes)?,
                2 => {
                    take_vec(&mut nodes)?; // encryption_key
                    take_vec(&mut nodes)?; // parent_hash
                    take_vec(&mut nodes)?; // unmerged_leaves
                }
                _ => return Err(bad("unknown node type")),
            },
            _ => return Err(bad("an optional node is neither absent nor present")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conversation::mls::put_vec;

    /// A key package's shape with `leaf_ext` as its leaf node's one extension type.
    fn key_package(leaf_ext: u16) -> Vec<u8> {
        let mut b = vec![0, 1, 0, 0x4d];
        put_vec(&mut b, &[7; 32]); // init_key
        put_vec(&mut b, &[8; 32]); // encryption_key
        put_vec(&mut b, &[9; 32]); // signature_key
        b.extend_from_slice(&[0, 1]);
        put_vec(&mut b, b"identity");
        for _ in 0..5 {
            put_vec(&mut b, &[]);
        }
        b.push(1);
        b.extend_from_slice(&[0; 16]);
        let mut ext = leaf_ext.to_be_bytes().to_vec();
        put_vec(&mut ext, &[0; 3]);
        put_vec(&mut b, &ext);
        put_vec(&mut b, &[1; 64]); // leaf signature
        put_vec(&mut b, &[]); // key package extensions
        put_vec(&mut b, &[2; 64]); // signature
        b
    }

    #[test]
    fn a_leaf_may_carry_application_id_last_resort_or_raw_types_but_no_group_extension() {
        for ok in [1u16, 10, 0xff01, 0x0a0a] {
            assert!(check_key_package(&key_package(ok)).is_ok(), "type {ok:#x}");
        }
        for refused in 2u16..=6 {
            assert!(check_key_package(&key_package(refused)).is_err(), "type {refused:#x}");
        }
        let mut trailing = key_package(1);
        trailing.push(0);
        assert!(check_key_package(&trailing).is_err());
        let whole = key_package(1);
        for n in 0..whole.len() {
            assert!(check_key_package(&whole[..n]).is_err(), "truncated at {n}");
        }
    }

    #[test]
    fn a_tree_of_blank_and_parent_nodes_checks_and_an_unknown_node_does_not() {
        let mut nodes = vec![0u8, 1, 2];
        for _ in 0..3 {
            put_vec(&mut nodes, &[5; 8]);
        }
        let mut tree = Vec::new();
        put_vec(&mut tree, &nodes);
        assert!(check_ratchet_tree(&tree).is_ok());
        let mut bad_node = Vec::new();
        put_vec(&mut bad_node, &[1, 3]);
        assert!(check_ratchet_tree(&bad_node).is_err());
    }
}
