//! `capsight backup` (from a running server) and `capsight restore` (into a stopped
//! server's data directory).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::ClientArgs;
use crate::api::BearerToken;
use crate::api::pb;
use crate::api::pb::access_service_client::AccessServiceClient;
use crate::store::{BACKUP_FILE, LEDGER_FILE, LedgerContents, MANIFEST_FILE};

#[derive(Debug, Args)]
pub(super) struct BackupArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Directory to write the backup to (new, or empty): `backup.bin` and `MANIFEST`.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    /// Backup directory written by `capsight backup`.
    #[arg(long)]
    from: PathBuf,
    /// The stopped server's data directory to restore into (absent or empty, unless
    /// --replace).
    #[arg(long, env = "CAPSIGHT_DATA_DIR", default_value = "./capsight-data")]
    data_dir: PathBuf,
    /// Move the store in --data-dir aside (to DIR.replaced-<seconds>) and restore in its
    /// place, carrying over the erasures it made after the backup.
    #[arg(long)]
    replace: bool,
    /// Erasure ledger to carry over instead of the replaced store's (its
    /// `erasures.ledger`, e.g. a copy kept elsewhere).
    #[arg(long)]
    ledger: Option<PathBuf>,
}

fn new_dir(dir: &Path) -> Result<(), String> {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} is not empty", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

fn owner_only_file(path: &Path) -> Result<std::fs::File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// `backup`: receives the server's backup, checks its size and digest against the
/// manifest, and writes `backup.bin` then `MANIFEST` (a backup without a manifest is
/// incomplete).
pub(super) async fn run_backup(args: BackupArgs) -> Result<ExitCode, String> {
    let token = args.client.token()?;
    let channel = args.client.connect().await?;
    let auth = BearerToken::new(&token).map_err(|e| e.to_string())?;
    let mut client = AccessServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(4 * 1024 * 1024);
    new_dir(&args.out)?;
    let data = args.out.join(BACKUP_FILE);
    let mut file = std::io::BufWriter::new(owner_only_file(&data)?);
    let status = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
    let mut stream = client
        .create_backup(pb::CreateBackupRequest {})
        .await
        .map_err(status)?
        .into_inner();
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut bytes = 0u64;
    let mut manifest = None;
    while let Some(message) = stream.message().await.map_err(status)? {
        match message.part {
            Some(pb::create_backup_response::Part::Chunk(chunk)) => {
                digest.update(&chunk);
                bytes += chunk.len() as u64;
                file.write_all(&chunk)
                    .map_err(|e| format!("writing {}: {e}", data.display()))?;
            }
            Some(pb::create_backup_response::Part::Manifest(m)) => manifest = Some(m),
            None => {}
        }
    }
    let manifest = manifest.ok_or("the server ended the backup without its manifest")?;
    let sha256: String = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if bytes != manifest.size_bytes || sha256 != manifest.sha256 {
        return Err(format!(
            "the backup received ({bytes} bytes) does not match its manifest ({} bytes): \
             nothing usable was written",
            manifest.size_bytes
        ));
    }
    file.into_inner()
        .map_err(|e| e.to_string())
        .and_then(|f| f.sync_all().map_err(|e| e.to_string()))
        .map_err(|e| format!("writing {}: {e}", data.display()))?;
    let path = args.out.join(MANIFEST_FILE);
    let mut text = owner_only_file(&path)?;
    text.write_all(manifest.text.as_bytes())
        .and_then(|()| text.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    std::fs::File::open(&args.out)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    let records: u64 = manifest.tree_records.values().sum();
    eprintln!(
        "backup of {records} records ({bytes} bytes, {} commits) written to {}",
        manifest.commits,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `restore`: see `store::restore`. With --replace the current store is moved aside
/// first and its erasure ledger carried over (as is its `admin.token`).
pub(super) async fn run_restore(args: RestoreArgs) -> Result<ExitCode, String> {
    // The restored store's files are its owner's only, as the server makes them.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let ledger_path = args
        .ledger
        .clone()
        .or_else(|| args.replace.then(|| args.data_dir.join(LEDGER_FILE)));
    let newer = match &ledger_path {
        Some(path) if path.exists() => {
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Some(LedgerContents::parse(&bytes).map_err(|e| {
                format!(
                    "{}: {e}; give a sound copy of the ledger with --ledger",
                    path.display()
                )
            })?)
        }
        Some(path) if args.ledger.is_some() => {
            return Err(format!("{} does not exist", path.display()));
        }
        _ => None,
    };
    let occupied = std::fs::read_dir(&args.data_dir).is_ok_and(|mut d| d.next().is_some());
    let mut replaced = None;
    if occupied {
        if !args.replace {
            return Err(format!(
                "{} is not empty: stop the server and pass --replace to move its store aside \
                 (its erasures are carried over)",
                args.data_dir.display()
            ));
        }
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut aside = args.data_dir.clone().into_os_string();
        aside.push(format!(".replaced-{seconds}"));
        let aside = PathBuf::from(aside);
        // sled's lock on its log: a running server holds it, and then nothing is moved.
        if let Ok(log) = std::fs::File::open(args.data_dir.join("db"))
            && fs2::FileExt::try_lock_exclusive(&log).is_err()
        {
            return Err(format!(
                "{} is in use: stop the server first",
                args.data_dir.display()
            ));
        }
        std::fs::rename(&args.data_dir, &aside)
            .map_err(|e| format!("cannot move {} aside: {e}", args.data_dir.display()))?;
        replaced = Some(aside);
    }
    let (from, into) = (args.from.clone(), args.data_dir.clone());
    let restored =
        tokio::task::spawn_blocking(move || crate::store::restore(&from, &into, newer.as_ref()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    if let Some(aside) = &replaced {
        let token = aside.join(crate::server::ADMIN_TOKEN_FILE);
        if token.exists() {
            std::fs::copy(&token, args.data_dir.join(crate::server::ADMIN_TOKEN_FILE))
                .map_err(|e| format!("cannot copy {}: {e}", token.display()))?;
        }
        eprintln!(
            "the replaced store is in {} (remove it once the restore is checked)",
            aside.display()
        );
    }
    for (tree, n) in &restored.trees {
        println!("{tree}: {n}");
    }
    println!(
        "restored into {}; erasures to make again at the next start: {}",
        args.data_dir.display(),
        restored.erasures_to_reapply
    );
    Ok(ExitCode::SUCCESS)
}
