//! A throwaway certificate authority for TLS tests: a CA and the leaf
//! certificates it issues, written as PEM files in the cert-manager layout
//! (`tls.crt`, `tls.key`, `ca.crt`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// PEM files of one identity.
#[derive(Clone, Debug)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `name` valid for serving on loopback and as a
    /// client (nodes are clients of each other), written into `dir`.
    pub fn issue(&self, name: &str, dir: &Path) -> Identity {
        std::fs::create_dir_all(dir).unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let identity = Identity {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            ca: dir.join("ca.crt"),
        };
        // Key first and certificate last, as a rotation would land.
        std::fs::write(&identity.ca, self.pem()).unwrap();
        std::fs::write(&identity.key, key.serialize_pem()).unwrap();
        std::fs::write(&identity.cert, cert.pem()).unwrap();
        identity
    }
}

impl Identity {
    /// The node's environment for these files.
    pub fn node_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "MATCHENGINE_TLS_CERT".into(),
                self.cert.display().to_string(),
            ),
            ("MATCHENGINE_TLS_KEY".into(), self.key.display().to_string()),
            ("MATCHENGINE_TLS_CA".into(), self.ca.display().to_string()),
        ]
    }

    /// Client options presenting this identity (or only trusting the CA).
    pub fn client_tls(&self, present_certificate: bool) -> matchengine_client::TlsOptions {
        let identity = present_certificate.then_some((self.cert.as_path(), self.key.as_path()));
        matchengine_client::TlsOptions::from_files(&self.ca, identity).unwrap()
    }
}
