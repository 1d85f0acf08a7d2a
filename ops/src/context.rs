//! Global options and how they become a connected client.
use std::path::PathBuf;

use clap::Args;
use ecca::client::{Client, Credentials};
use ecca::{Error, Result};

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Local data directory: the server address and the admin credential are found there.
    #[arg(long, global = true, env = "ECCA_DATA_DIR", conflicts_with = "server")]
    pub data_dir: Option<PathBuf>,
    /// Remote server, e.g. https://ca.example:7443 (with --credentials).
    #[arg(long, global = true, env = "ECCA_SERVER", requires = "credentials")]
    pub server: Option<String>,
    /// Credential folder holding cert.pem, key.pem and ca.pem.
    #[arg(long, global = true, env = "ECCA_CREDENTIALS")]
    pub credentials: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    /// Connects as configured.
    pub async fn client(&self) -> Result<Client> {
        match (&self.data_dir, &self.server, &self.credentials) {
            (Some(dir), None, _) => Client::connect_data_dir(dir).await,
            (None, Some(url), Some(creds)) => {
                Client::connect(url, &Credentials::load(creds)?).await
            }
            _ => Err(Error::InvalidArgument(
                "say which server: --data-dir DIR (local admin) or --server URL --credentials DIR"
                    .into(),
            )),
        }
    }
}
