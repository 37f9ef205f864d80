//! Built-in HTTPS (rustls with the ring provider). The certificate and key are read from PEM
//! files at start and again on every `reload` (SIGHUP): a renewed certificate is served to new
//! connections without a restart, and a reload that fails keeps the one already loaded.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::error::{Error, Result};

/// The TLS acceptor and the certificate it currently serves.
pub struct Tls {
    files: TlsFiles,
    current: Arc<CurrentCert>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Loads the files; an unreadable or mismatched pair is an error (the server won't start).
    pub fn load(files: TlsFiles) -> Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = Arc::new(CurrentCert(RwLock::new(read_pair(&files, &provider)?)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            files,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Reads the files again and serves the new pair to new connections. On error the pair
    /// in use stays.
    pub fn reload(&self) -> Result<()> {
        let provider = rustls::crypto::ring::default_provider();
        let pair = read_pair(&self.files, &provider)?;
        match self.current.0.write() {
            Ok(mut slot) => *slot = pair,
            Err(poisoned) => *poisoned.into_inner() = pair,
        }
        Ok(())
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// Hands every handshake the pair loaded last.
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCert")
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let pair = match self.0.read() {
            Ok(pair) => pair,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(pair.clone())
    }
}

fn read_pair(
    files: &TlsFiles,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<CertifiedKey>> {
    let unreadable = |what: &str, path: &PathBuf, e: &dyn fmt::Display| {
        Error::InvalidValue(format!("TLS {what} {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| unreadable("certificate", &files.cert, &e))?;
    if chain.is_empty() {
        return Err(unreadable(
            "certificate",
            &files.cert,
            &"no CERTIFICATE block found",
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| unreadable("key", &files.key, &e))?;
    let pair = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        Error::InvalidValue(format!(
            "TLS certificate {} and key {} do not fit together: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    Ok(Arc::new(pair))
}

fn tls_error(e: rustls::Error) -> Error {
    Error::InvalidValue(format!("TLS setup: {e}"))
}

/// A client configuration that accepts exactly the certificate in `cert_file` (its first
/// one), whatever name it carries: for `scimd health`, which reaches the server by a loopback
/// address its certificate does not name, and only needs to know it talks to this server.
pub fn pinned_client(cert_file: &std::path::Path) -> Result<rustls::ClientConfig> {
    let unreadable =
        |e: &dyn fmt::Display| Error::InvalidValue(format!("{}: {e}", cert_file.display()));
    let expected = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| unreadable(&e))?
        .next()
        .ok_or_else(|| unreadable(&"no CERTIFICATE block found"))?
        .map_err(|e| unreadable(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Pinned {
        expected,
        provider: provider.clone(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

#[derive(Debug)]
struct Pinned {
    expected: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server presented a different certificate than --tls-cert".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
