//! Which certificate authorities a TLS client of the runner trusts: the system's roots (or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, read by `rustls-native-certs`) plus an optional CA
//! bundle given as a PEM file or a directory of `*.pem` / `*.crt` files.
//!
//! Shared by the Argo client here and the control-plane connection in runner-core, so that both
//! read a bundle the same way. Errors are plain sentences naming the setting; each caller wraps
//! them in its own error type.

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// File extensions read from a CA directory.
pub const CA_EXTENSIONS: [&str; 2] = ["pem", "crt"];

/// The certificates of `path`: a PEM file (one or more `CERTIFICATE` blocks), or a directory
/// whose `*.pem` / `*.crt` files (not recursive, symlinks followed) are each read the same way.
/// `var` names the setting in messages.
pub fn load_ca_path(path: &Path, var: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!(
            "{var}={}: cannot read it ({e}); mount the CA's PEM file or a directory of *.pem / *.crt files there",
            path.display()
        )
    })?;
    if !meta.is_dir() {
        return load_pem_file(path, var);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| format!("{var}={}: cannot list the directory ({e})", path.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| CA_EXTENSIONS.iter().any(|c| x.eq_ignore_ascii_case(c)))
                && p.is_file()
        })
        .collect();
    files.sort();
    let mut certs = Vec::new();
    for file in &files {
        certs.extend(load_pem_file(file, var)?);
    }
    if certs.is_empty() {
        return Err(format!(
            "{var}={}: the directory holds no *.pem or *.crt file with a CERTIFICATE block",
            path.display()
        ));
    }
    Ok(certs)
}

fn load_pem_file(path: &Path, var: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{var}={}: cannot read it as PEM ({e})", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{var}={}: holds an invalid PEM certificate ({e})",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{var}={}: holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The system's roots as `rustls-native-certs` finds them: only `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` when either is set in the process environment, else the platform's store.
/// Problems (a missing `SSL_CERT_FILE`...) come back as sentences to log, not as an error: the
/// extra bundle may still be enough.
pub fn system_roots() -> (Vec<CertificateDer<'static>>, Vec<String>) {
    let found = rustls_native_certs::load_native_certs();
    let problems = found
        .errors
        .iter()
        .map(|e| {
            format!(
                "loading the system's CA certificates (SSL_CERT_FILE / SSL_CERT_DIR if set): {e}"
            )
        })
        .collect();
    (found.certs, problems)
}

/// A root store of the system's roots plus the bundle at `extra` (read by [`load_ca_path`]).
/// Fails when the bundle cannot be read or when no root at all is left.
pub fn root_store(extra: Option<&Path>, var: &str) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (system, problems) = system_roots();
    for p in problems {
        tracing::warn!("{p}");
    }
    roots.add_parsable_certificates(system);
    if let Some(path) = extra {
        for cert in load_ca_path(path, var)? {
            roots
                .add(cert)
                .map_err(|e| format!("{var}={}: certificate rejected ({e})", path.display()))?;
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "no trusted CA certificates: none found in the system store (or in SSL_CERT_FILE / SSL_CERT_DIR when set) and {var} is not set"
        ));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn file_or_directory() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.pem");
        std::fs::write(&one, ca_pem("one")).unwrap();
        assert_eq!(load_ca_path(&one, "X").unwrap().len(), 1);

        let bundle = dir.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(bundle.join("a.pem"), ca_pem("a")).unwrap();
        std::fs::write(
            bundle.join("b.CRT"),
            format!("{}{}", ca_pem("b"), ca_pem("c")),
        )
        .unwrap();
        std::fs::write(bundle.join("README"), "not read").unwrap();
        std::fs::create_dir(bundle.join("sub.pem")).unwrap();
        assert_eq!(load_ca_path(&bundle, "X").unwrap().len(), 3);

        std::fs::write(bundle.join("bad.crt"), "-----BEGIN CERTIFICATE-----\n!!\n").unwrap();
        let e = load_ca_path(&bundle, "SERVER_CA_FILE").unwrap_err();
        assert!(e.contains("SERVER_CA_FILE") && e.contains("bad.crt"), "{e}");

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = load_ca_path(&empty, "ARGO_SERVER_CERTIFICATE_PATH").unwrap_err();
        assert!(e.contains("no *.pem or *.crt"), "{e}");
        let e = load_ca_path(&dir.path().join("missing"), "X").unwrap_err();
        assert!(e.contains("cannot read it"), "{e}");
    }
}
