//! Recovery and rotation (issue 13): the account key exported as a recovery secret, a
//! new installation started from it when every device is lost, and fresh keys in every
//! direct chat.

use super::*;

/// The account seed a recovery secret holds.
fn recovery_seed(secret: &str) -> Result<zeroize::Zeroizing<[u8; 32]>> {
    let bad = || CoreError::InvalidArgument("not a recovery secret".into());
    let hex_seed = secret.trim().strip_prefix(RECOVERY_PREFIX).ok_or_else(bad)?;
    let bytes = zeroize::Zeroizing::new(hex::decode(hex_seed).map_err(|_| bad())?);
    Ok(zeroize::Zeroizing::new(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad())?))
}

/// The prefix of a recovery secret (then the account key's seed in hex).
pub const RECOVERY_PREFIX: &str = "logos_recovery_";

impl Client {
    /// The secret that restores this account on a new device when every device is lost
    /// (`Client::recover`): the account key itself, so it must be kept like one.
    pub fn export_recovery(&self) -> Result<zeroize::Zeroizing<String>> {
        self.check_active()?;
        let mut s = zeroize::Zeroizing::new(String::from(RECOVERY_PREFIX));
        s.push_str(&zeroize::Zeroizing::new(hex::encode(self.account.seed().as_slice())));
        Ok(s)
    }

    /// A new installation of the account a recovery secret holds, on a device that has
    /// none of its installations. `records` are the account-topic records the driver read
    /// (`directory_topics()[0]`): the newest signed list of the account is extended with
    /// this installation at a higher lamport, so the lost installations can then be
    /// revoked with `remove_installation`. A malformed secret is `INVALID_ARGUMENT`.
    pub fn recover(
        mut rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        secret: &str,
        records: &[Vec<u8>],
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        let seed = recovery_seed(secret)?;
        let account = AccountKey::from_seed(&seed);
        let installation = InstallationKey::generate(rng.as_mut());
        let mut known = Directory::default();
        let provider = Provider::new().map_err(CoreError::mls)?;
        let sealed_topic = directory::sealed::account_topic(&account.id());
        known.lookup_topics(&[account.id()]);
        for r in records {
            // Shared space: what does not verify is skipped. A record is ours sealed or
            // libchat's plain one.
            if known.ingest(&sealed_topic, r, provider.crypto()).is_err() {
                let _ = known.ingest(ACCOUNT_TOPIC, r, provider.crypto());
            }
        }
        let (lamport, mut devices) = match known.bundle(&account.id()) {
            Some(b) => (b.lamport.saturating_add(1), b.devices.clone()),
            None => (0, Vec::new()),
        };
        devices.push(installation.id());
        let bundle = account.sign_bundle(lamport, devices)?;
        // The newest log found, extended the same way (a first one if none was found).
        let log = match known.log(&account.id()) {
            Some(l) => Some(l.follow(&account, &bundle.devices)?),
            None => None,
        };
        Self::with_bundle(rng, store_key, account, installation, (bundle, log), now_ms)
    }

    /// The topics a recovery reads for the account a secret holds: libchat's shared account
    /// topic and the account's sealed one.
    pub fn recovery_topics(secret: &str) -> Result<Vec<String>> {
        let seed = recovery_seed(secret)?;
        let account = AccountKey::from_seed(&seed);
        Ok(vec![ACCOUNT_TOPIC.to_owned(), directory::sealed::account_topic(&account.id())])
    }

    /// Fresh keys (post-compromise security): an MLS self-update in every direct chat
    /// (new leaf HPKE keys and path secrets; what the old keys could read stays readable
    /// in the history, which is stored decrypted under the store key), and a fresh
    /// last-resort key package, published, whose predecessor's private key is deleted.
    pub fn rotate_keys(&mut self, now_ms: u64) -> Result<Effects> {
        self.guarded(|c| {
            c.check_active()?;
            c.touch_identity();
            let mut fx = Effects::default();
            let ids: Vec<ConversationId> = c.conversations.keys().cloned().collect();
            for cid in ids {
                c.touch(&cid);
                let Some(convo) = c.conversations.get_mut(&cid) else { continue };
                let commit = convo.self_update(&c.provider, &c.installation)?;
                let env = group_envelope(&cid, commit);
                let topic = cid.topic().as_str().to_owned();
                c.remember(&fx_digest(&topic, &env), &mut fx)?;
                c.enqueue(&mut fx, topic, env)?;
                c.put_conversation(&cid, &mut fx)?;
            }
            let old = c.key_package.hash_ref(c.provider.crypto()).map_err(CoreError::mls)?;
            let fresh = mls::new_key_package(&c.provider, &c.installation, &c.credential)?;
            c.key_package = fresh.key_package().clone();
            openmls_traits::storage::StorageProvider::delete_key_package(c.provider.storage(), &old)
                .map_err(CoreError::mls)?;
            c.put_account(&mut fx)?;
            c.announce_into(&mut fx, now_ms)?;
            c.sync_mls(&mut fx)?;
            Ok(fx)
        })
    }
}
