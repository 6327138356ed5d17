//! Installation links, the granting and the new side (issue 13; the frames are
//! `core::link`): a code handed out, the request answered with a grant (the account key
//! and the new list, under the link's session), the new installation's key package
//! taken in and the installation added to the account's chats.

use super::*;
use crate::core::conversation::mls::{put_vec, take_vec};
use crate::core::effects::HistoryRange;
use crate::core::link::{
    decode_request, encode_request, Grant, Kind, LinkSecret, SessionKey, GRANT_INFO, LINK_TTL_MS,
};
use openmls::prelude::tls_codec::DeserializeBytes as _;
use openmls_traits::crypto::OpenMlsCrypto as _;
use openmls_traits::types::{HpkeCiphertext, HpkeKeyPair};

/// Most link codes open at once (the oldest goes first).
const MAX_LINKS: usize = 4;

/// A code this installation handed out.
#[derive(Clone)]
pub(super) struct OpenLink {
    pub(super) secret: LinkSecret,
    pub(super) topic: String,
    pub(super) expires: u64,
    /// The installation whose request used the code (a code serves one).
    pub(super) claimed: Option<InstallationId>,
    /// Its key package came and it was added: later frames change nothing (the code
    /// stays until it expires, so that another device trying it is told at once).
    pub(super) ready: bool,
    /// The claiming request's HPKE key and the session secret its grant carried (the
    /// grant's body and the history go under the session key derived from it).
    pub(super) session: Option<(Vec<u8>, zeroize::Zeroizing<[u8; 32]>)>,
}

impl std::fmt::Debug for OpenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the session secret are left out (`LinkSecret` redacts itself).
        f.debug_struct("OpenLink")
            .field("secret", &self.secret)
            .field("expires", &self.expires)
            .field("claimed", &self.claimed)
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// A new device waiting for an installation of the account to answer its link code.
pub struct Linking {
    // All three zeroize on drop.
    pub(super) secret: LinkSecret,
    installation: InstallationKey,
    /// Fresh for this link: the grant's session secret is sealed to it.
    hpke: HpkeKeyPair,
}

impl std::fmt::Debug for Linking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linking")
            .field("secret", &self.secret)
            .field("installation", &self.installation.id())
            .finish_non_exhaustive()
    }
}

impl Linking {
    /// Parses the code and draws this device's installation key; the effects subscribe
    /// to the link's topic and publish the request. Feed what that topic brings to
    /// [`Client::from_link`].
    pub fn start<R: CryptoRngCore + ?Sized>(rng: &mut R, code: &str) -> Result<(Self, Effects)> {
        let secret = LinkSecret::parse(code)?;
        let installation = InstallationKey::generate(rng);
        let mut ikm = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ikm.as_mut());
        let provider = Provider::new().map_err(CoreError::mls)?;
        let hpke = provider
            .crypto()
            .derive_hpke_keypair(mls::CIPHERSUITE.hpke_config(), ikm.as_slice())
            .map_err(CoreError::mls)?;
        let request = secret.seal(rng, Kind::Request, &encode_request(&installation.id(), &hpke.public))?;
        let topic = secret.topic();
        let fx = Effects {
            subscribe: vec![topic.clone()],
            publish: vec![Outbound { content_topic: topic, payload: request, outbox_id: 0 }],
            ..Effects::default()
        };
        Ok((Linking { secret, installation, hpke }, fx))
    }

    /// The link's content topic.
    pub fn topic(&self) -> String {
        self.secret.topic()
    }

    /// The request again (the transport may have lost it).
    pub fn request<R: CryptoRngCore + ?Sized>(&self, rng: &mut R) -> Result<Vec<u8>> {
        self.secret.seal(rng, Kind::Request, &encode_request(&self.installation.id(), &self.hpke.public))
    }
}

impl Linking {
    /// The grant, if `frame` (read on the link's topic) is it; `Ok(None)` for the other
    /// frames there (our own request coming back, or anything that does not open);
    /// `INVALID_LINK` when the installation
    /// refused the code (used by another device, or expired).
    pub fn open_grant(&self, frame: &[u8]) -> Result<Option<Grant>> {
        // Anyone may publish on any topic: what does not open is not ours.
        let Ok((kind, plain)) = self.secret.open(frame) else { return Ok(None) };
        match kind {
            Kind::Grant => {
                // The session secret, sealed to our key; then the body under the session.
                let mut rest = plain.as_slice();
                let ct = HpkeCiphertext::tls_deserialize_exact_bytes(take_vec(&mut rest)?)
                    .map_err(|_| CoreError::InvalidLink("grant"))?;
                let provider = Provider::new().map_err(CoreError::mls)?;
                let shared = zeroize::Zeroizing::new(
                    provider
                        .crypto()
                        .hpke_open(
                            mls::CIPHERSUITE.hpke_config(),
                            &ct,
                            &self.hpke.private,
                            GRANT_INFO,
                            self.secret.topic().as_bytes(),
                        )
                        .map_err(|_| CoreError::InvalidLink("a grant for another device"))?,
                );
                let session = SessionKey::derive(&self.secret, &shared);
                let body = session.open(Kind::Grant, rest)?;
                let mut grant = Grant::decode(&body)?;
                grant.session = Some(session);
                Ok(Some(grant))
            }
            Kind::Refused if plain.as_slice() == self.installation.id().as_bytes() => {
                Err(CoreError::InvalidLink("the code was used by another device, or expired"))
            }
            _ => Ok(None),
        }
    }
}

impl Client {
    /// A new installation of the account a link's grant names; the effects persist it,
    /// announce it and tell the granting installation it is ready (its key package).
    pub fn from_link(
        rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        linking: Linking,
        grant: &Grant,
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        let account = AccountKey::from_seed(&grant.account_seed);
        let bundle = DeviceBundle::verify(&account.id(), &grant.bundle_payload, &grant.bundle_signature)
            .map_err(|_| CoreError::InvalidLink("the granted device list does not verify"))?;
        if !bundle.devices.contains(&linking.installation.id()) {
            return Err(CoreError::InvalidLink("the granted device list does not list this device"));
        }
        let log = crate::core::account_log::AccountLog::verify(
            &account.id(),
            &grant.log_payload,
            &grant.log_signature,
        )
        .map_err(|_| CoreError::InvalidLink("the granted account log does not verify"))?;
        if !log.lists_exactly(&bundle.devices) {
            return Err(CoreError::InvalidLink("the granted account log and list differ"));
        }
        let session = grant.session.clone().ok_or(CoreError::InvalidLink("a grant that was not opened"))?;
        let Linking { secret, installation, .. } = linking;
        let (mut client, mut fx) =
            Self::with_bundle(rng, store_key, account, installation, (bundle, Some(log)), now_ms)?;
        // The recent history comes on the link's topic once we are in the chats.
        fx.subscribe.push(secret.topic());
        // Only while the code is good: after that, the topic is anyone's who saw the code.
        client.link_in = Some((secret.clone(), session, now_ms.saturating_add(LINK_TTL_MS)));
        let kp = client.key_package_bytes()?;
        let ready = secret.seal(client.rng.as_mut(), Kind::Ready, &kp)?;
        // Through the outbox (a public key package, sealed): published again until the
        // transport takes it.
        client.enqueue(&mut fx, secret.topic(), ready)?;
        Ok((client, fx))
    }

    /// A one-time code a new device passes to `Linking::start` (valid 10 minutes). The
    /// effects follow the link's topic.
    pub fn create_link(&mut self, now_ms: u64) -> Result<(String, Effects)> {
        self.check_active()?;
        self.links.retain(|l| l.expires > now_ms);
        if self.links.len() >= MAX_LINKS {
            self.links.remove(0);
        }
        let secret = LinkSecret::generate(self.rng.as_mut());
        let code = secret.code();
        let topic = secret.topic();
        let fx = Effects { subscribe: vec![topic.clone()], ..Effects::default() };
        self.links.push(OpenLink {
            secret,
            topic,
            expires: now_ms.saturating_add(LINK_TTL_MS),
            claimed: None,
            ready: false,
            session: None,
        });
        Ok((code, fx))
    }

    /// Whether a topic is one of our open links'.
    pub(super) fn link_topic(&self, topic: &str) -> bool {
        self.links.iter().any(|l| l.topic == topic)
    }

    /// A frame on an open link's topic.
    pub(super) fn handle_link(&mut self, topic: &str, frame: &[u8], now_ms: u64) -> Result<Effects> {
        self.touch_identity();
        let i =
            self.links.iter().position(|l| l.topic == topic).ok_or(CoreError::InvalidLink("no such link"))?;
        let link = self.links.get(i).ok_or(CoreError::InvalidLink("no such link"))?;
        let (kind, plain) = link.secret.open(frame)?;
        if link.expires <= now_ms {
            let refusal = match kind {
                Kind::Request => Some(self.refuse_link(i, &decode_request(&plain)?.0)?),
                _ => None,
            };
            self.links.remove(i);
            let e = CoreError::InvalidLink("the code expired");
            let mut fx = Effects::default();
            fx.publish.extend(refusal);
            fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
            return Ok(fx);
        }
        match kind {
            Kind::Grant | Kind::Refused | Kind::History => Ok(Effects::default()), // our own frames coming back
            Kind::Request => {
                let (new, key) = decode_request(&plain)?;
                self.grant(i, new, key, now_ms)
            }
            Kind::Ready if link.ready => Ok(Effects::default()),
            Kind::Ready => {
                let claimed =
                    link.claimed.clone().ok_or(CoreError::InvalidLink("ready before any request"))?;
                let kp = directory::parse_key_package(&plain, self.provider.crypto())?;
                let leaf = kp.leaf_node();
                let cred = mls::member_credential(leaf.credential(), leaf.signature_key().as_slice())?;
                if cred.installation != claimed || cred.account.as_ref() != Some(&self.account.id()) {
                    return Err(CoreError::InvalidLink("a key package of another installation"));
                }
                self.directory.accept_key_package(&claimed, now_ms, kp.clone());
                let mut fx = Effects::default();
                self.add_own_installation(&claimed, &kp, now_ms, &mut fx)?;
                self.add_own_installation_to_groups(&kp, now_ms, &mut fx);
                if let Some(l) = self.links.get_mut(i) {
                    l.ready = true;
                }
                // The new installation gets the recent history of every chat it was added to.
                let mut ranges = Vec::new();
                let groups = self.groups.iter().filter(|(_, g)| !g.left).map(|(id, _)| id);
                for id in self.conversations.keys().chain(groups) {
                    let (from, to) = self.history_range(id.as_str(), None)?;
                    ranges.push(HistoryRange { conversation_id: id.as_str().to_owned(), from, to });
                }
                fx.events.push(Event::HistoryWanted { link: topic.to_owned(), ranges });
                Ok(fx)
            }
        }
    }

    /// Answers a request: the new installation joins the account's list, and gets the
    /// account key and the list. A repeated request from the same device is answered
    /// again (the grant may have been lost); one from another device is refused.
    pub(super) fn grant(
        &mut self,
        i: usize,
        new: InstallationId,
        key: Vec<u8>,
        now_ms: u64,
    ) -> Result<Effects> {
        let link = self.links.get_mut(i).ok_or(CoreError::InvalidLink("no such link"))?;
        let same_device = link.claimed.as_ref().is_none_or(|c| *c == new);
        if same_device && link.session.as_ref().is_some_and(|(k, _)| *k != key) {
            // The claiming installation's id with another key: someone else who saw the
            // code, after the session was set up. Not answered.
            return Ok(Effects::default());
        }
        match &link.claimed {
            Some(c) if *c != new => {
                // Told, so that the other device fails at once instead of waiting.
                let e = CoreError::InvalidLink("the code was used already");
                let mut fx = Effects::default();
                fx.publish.push(self.refuse_link(i, &new)?);
                fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                return Ok(fx);
            }
            _ => link.claimed = Some(new.clone()),
        }
        let topic = link.topic.clone();
        let mut fx = Effects::default();
        if !self.bundle.devices.contains(&new) {
            let mut devices = self.bundle.devices.clone();
            devices.push(new);
            let bundle = self.account.sign_bundle(self.bundle.lamport.saturating_add(1), devices)?;
            self.adopt_bundle(bundle, now_ms, &mut fx)?;
            self.publish_bundle(&mut fx)?;
        }
        let grant = Grant {
            account_seed: self.account.seed(),
            bundle_payload: self.bundle.payload.clone(),
            bundle_signature: self.bundle.signature.to_vec(),
            log_payload: self.log.payload.clone(),
            log_signature: self.log.signature.to_vec(),
            session: None,
        };
        let link = self.links.get_mut(i).ok_or(CoreError::InvalidLink("no such link"))?;
        // A fresh session secret, sealed to the request's key (the same one again when the
        // request is repeated: the grant may have been lost).
        let shared = match &link.session {
            Some((_, shared)) => shared.clone(),
            None => {
                let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
                self.rng.fill_bytes(fresh.as_mut());
                fresh
            }
        };
        let ct = self
            .provider
            .crypto()
            .hpke_seal(mls::CIPHERSUITE.hpke_config(), &key, GRANT_INFO, topic.as_bytes(), shared.as_slice())
            .map_err(|_| CoreError::InvalidLink("a request whose key does not seal"))?;
        let session = SessionKey::derive(&link.secret, shared.as_slice());
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        put_vec(&mut plain, &ct.tls_serialize_detached().map_err(CoreError::mls)?);
        plain.extend_from_slice(&session.seal(self.rng.as_mut(), Kind::Grant, &grant.encode())?);
        link.session = Some((key, shared));
        let sealed = link.secret.seal(self.rng.as_mut(), Kind::Grant, &plain)?;
        // Not through the outbox: the grant holds the account key, which is never stored
        // outside the sealed account record.
        fx.publish.push(Outbound { content_topic: topic, payload: sealed, outbox_id: 0 });
        Ok(fx)
    }

    /// A refusal of a request from `device`, to publish on the link's topic.
    pub(super) fn refuse_link(&mut self, i: usize, device: &InstallationId) -> Result<Outbound> {
        let link = self.links.get(i).ok_or(CoreError::InvalidLink("no such link"))?;
        let payload = link.secret.seal(self.rng.as_mut(), Kind::Refused, device.as_bytes())?;
        Ok(Outbound { content_topic: link.topic.clone(), payload, outbox_id: 0 })
    }
}
