//! `cargo xtask test`: installs what the tests need that cargo does not (moto's server, in a venv
//! under target/), starts it on a free loopback port, runs every test of the workspace, stops it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::util;

/// Stops the child when dropped (also on error paths).
pub struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// Creates target/moto-venv with moto[server] unless it is already there.
fn ensure_moto(venv: &Path) -> anyhow::Result<PathBuf> {
    let server = venv.join("bin").join("moto_server");
    if server.exists() {
        return Ok(server);
    }
    println!("== installing moto[server] into {}", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .with_context(|| format!("running `{python} -m venv` (is Python 3 installed?)"))?
        .success();
    if !ok {
        bail!(
            "`{python} -m venv {}` failed; install python3-venv",
            venv.display()
        );
    }
    let ok = Command::new(venv_python(venv))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "moto[server]",
        ])
        .status()
        .context("running pip")?
        .success();
    if !ok {
        bail!(
            "`pip install 'moto[server]'` failed; the AWS tests need it (PyPI must be reachable)"
        );
    }
    Ok(server)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(addr: SocketAddr, child: &mut Child, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("moto_server exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("moto_server did not listen on {addr} within {timeout:?}")
}

/// Installs (once) and starts moto's server on a free loopback port: the server (stopped when
/// dropped) and its endpoint.
pub fn start_moto() -> anyhow::Result<(Service, String)> {
    let target = util::target_dir();
    std::fs::create_dir_all(&target)?;
    let server = ensure_moto(&target.join("moto-venv"))?;
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let log = std::fs::File::create(target.join("moto-server.log"))?;
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting {}", server.display()))?;
    let mut moto = Service(child);
    wait_listening(addr, &mut moto.0, Duration::from_secs(30))?;
    let endpoint = format!("http://{addr}");
    println!("== moto_server listening on {endpoint}");
    Ok((moto, endpoint))
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let (moto, endpoint) = start_moto()?;

    let mut cmd = util::cargo();
    cmd.args(["test", "--workspace", "--all-features"])
        .args(args)
        .env("RUNNER_TEST_MOTO_ENDPOINT", &endpoint);
    println!(
        "== cargo test --workspace --all-features {}",
        args.join(" ")
    );
    let status = cmd.status().context("running cargo test")?;
    drop(moto);
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}
