//! `agora-operator crd` prints the SocialPlatform CRD. (The controller itself is the
//! operator issue's next step; until it lands, running without `crd` says so.)

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("crd") => match agora_operator::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the CRD: {err}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: agora-operator crd   (prints the SocialPlatform CRD)");
            eprintln!("the controller is not part of this build yet");
            ExitCode::from(2)
        }
    }
}
