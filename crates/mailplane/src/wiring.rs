//! `postfix config` and `dovecot config`: the configuration that wires a mail server to
//! mailplane, from the command line's addresses.

use mailplane_mailserver::config::{self, DovecotWiring, PostfixWiring};

use crate::cli::{DovecotConfigArgs, PostfixConfigArgs};

pub fn postfix_config(args: PostfixConfigArgs) -> Result<(), String> {
    if args.master_cf {
        print!("{}", config::master_cf());
        return Ok(());
    }
    print!(
        "{}",
        config::main_cf(&PostfixWiring {
            policy: args.policy,
            socketmap: args.socketmap,
            lmtp: args.lmtp,
            sasl: args.sasl,
            recipient_delimiter: args.recipient_delimiter,
        })
    );
    Ok(())
}

/// Prints the Dovecot files, or writes them into the configuration directory and names
/// each.
pub fn dovecot_config(args: DovecotConfigArgs) -> Result<(), String> {
    if !args.dict.starts_with("unix:") {
        return Err(format!(
            "--dict {}: Dovecot reaches mailplane's dict listener over a UNIX socket only (unix:PATH)",
            args.dict
        ));
    }
    let files = config::dovecot(&DovecotWiring {
        dict: args.dict,
        conf_dir: args.conf_dir,
        mail_root: args.mail_root,
        mail_user: args.mail_user,
        lmtp: args.lmtp,
        sasl: args.sasl,
        recipient_delimiter: args.recipient_delimiter,
    });
    if !args.write {
        print!("{}", config::bundle(&files));
        return Ok(());
    }
    for (path, text) in &files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
