//! Who may connect, and over what: trust (no users configured: every
//! client is accepted, so bind loopback), or SCRAM-SHA-256 for the users
//! configured; optionally TLS (rustls) from PEM certificate and key files.
//!
//! Passwords are kept only as SCRAM salted passwords (PBKDF2, 4096
//! iterations, a random salt per server start), never in the clear. An
//! unknown user is answered with a stable decoy salt and fails at the end
//! of the exchange like a wrong password, so users cannot be enumerated.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use pgwire::api::auth::sasl::scram::{gen_salted_password, random_nonce};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::PgWireResult;
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::tokio_rustls::rustls;

/// SCRAM iterations (PostgreSQL's default).
const ITERATIONS: usize = 4096;

/// The configured users and their SCRAM secrets.
#[derive(Debug)]
pub struct Users {
    secrets: HashMap<String, (Vec<u8>, Vec<u8>)>,
    /// Key for the stable fake salts of unknown users.
    decoy_key: Vec<u8>,
    /// A salted password no client can match, for unknown users.
    decoy_salted: Vec<u8>,
}

impl Users {
    /// Derives SCRAM secrets for `(name, password)` pairs.
    pub fn new(list: &[(String, String)]) -> Users {
        let secrets = list
            .iter()
            .map(|(name, password)| {
                let salt = random_nonce().into_bytes();
                let salted = gen_salted_password(password, &salt, ITERATIONS);
                (name.clone(), (salt, salted))
            })
            .collect();
        let decoy_key = random_nonce().into_bytes();
        let decoy_salted = gen_salted_password(&random_nonce(), &decoy_key, ITERATIONS);
        Users {
            secrets,
            decoy_key,
            decoy_salted,
        }
    }

    /// An unknown user's salt: the same on every attempt (a salt that
    /// changed would tell the user does not exist), and shaped like a
    /// real one (24 characters).
    fn decoy_salt(&self, user: &str) -> Vec<u8> {
        let mac = gen_salted_password(user, &self.decoy_key, 1);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        hex.into_bytes()[..24].to_vec()
    }

    /// Whether no user is configured (trust).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        match self.secrets.get(user) {
            Some((salt, salted)) => Ok(Password::new(Some(salt.clone()), salted.clone())),
            // As PostgreSQL does: an unknown user goes through the whole
            // exchange and fails at its end exactly as a wrong password
            // does, so a client cannot learn which users exist.
            None => Ok(Password::new(
                Some(self.decoy_salt(user)),
                self.decoy_salted.clone(),
            )),
        }
    }
}

/// A TLS acceptor from a PEM certificate chain and private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("reading TLS private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not fit together: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
