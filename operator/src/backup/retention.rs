//! Which backups retention deletes (`spec.backup.retention`): those beyond the newest
//! `count`, and those older than `maxAge`; never one still Pending or Running, never
//! the newest Completed one (so a platform always keeps a backup to restore from).

use super::resource::{BackupPhase, SocialPlatformBackup};
use super::spec::Retention;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

/// The backups of one platform `retention` deletes at `now`.
pub fn to_prune<'a>(
    backups: &[&'a SocialPlatformBackup],
    retention: &Retention,
    now: Timestamp,
) -> Vec<&'a SocialPlatformBackup> {
    let created = |b: &SocialPlatformBackup| b.creation_timestamp().map(|t| t.0);
    let mut newest_first: Vec<&SocialPlatformBackup> = backups.to_vec();
    newest_first.sort_by(|a, b| {
        created(b)
            .cmp(&created(a))
            .then_with(|| b.name_any().cmp(&a.name_any()))
    });
    let phase = |b: &SocialPlatformBackup| b.status.as_ref().and_then(|s| s.phase);
    let newest_completed = newest_first
        .iter()
        .find(|b| phase(b) == Some(BackupPhase::Completed))
        .map(|b| b.name_any());
    let max_age = retention.max_age_seconds();
    newest_first
        .iter()
        .enumerate()
        .filter(|(i, backup)| {
            let finished = matches!(
                phase(backup),
                Some(BackupPhase::Completed | BackupPhase::Failed)
            );
            let beyond_count = retention
                .count
                .is_some_and(|count| usize::try_from(count).is_ok_and(|c| *i >= c));
            let too_old = max_age
                .zip(created(backup))
                .is_some_and(|(age, at)| now.as_second().saturating_sub(at.as_second()) > age);
            finished
                && backup.metadata.deletion_timestamp.is_none()
                && Some(backup.name_any()) != newest_completed
                && (beyond_count || too_old)
        })
        .map(|(_, backup)| *backup)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::resource::{SocialPlatformBackupSpec, SocialPlatformBackupStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn backup(name: &str, hours_ago: i64, phase: BackupPhase) -> SocialPlatformBackup {
        let mut b = SocialPlatformBackup::new(
            name,
            SocialPlatformBackupSpec {
                platform: "demo".into(),
            },
        );
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        b.metadata.creation_timestamp = Some(Time(
            Timestamp::from_second(now.as_second() - hours_ago * 3600).unwrap(),
        ));
        b.status = Some(SocialPlatformBackupStatus {
            phase: Some(phase),
            ..SocialPlatformBackupStatus::default()
        });
        b
    }

    fn pruned(backups: &[SocialPlatformBackup], retention: Retention) -> Vec<String> {
        let refs: Vec<&SocialPlatformBackup> = backups.iter().collect();
        let now = "2026-12-06T12:00:00Z".parse().unwrap();
        let mut names: Vec<String> = to_prune(&refs, &retention, now)
            .into_iter()
            .map(|b| b.name_any())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn retention_keeps_the_newest_and_never_the_last_completed() {
        use BackupPhase::*;
        let backups = [
            backup("a", 1, Failed),
            backup("b", 2, Running),
            backup("c", 26, Completed),
            backup("d", 50, Completed),
            backup("e", 74, Failed),
        ];
        let count = |n| Retention {
            count: Some(n),
            max_age: None,
        };
        assert_eq!(pruned(&backups, count(2)), ["d", "e"]);
        // Only one kept by count: still the newest completed (c), and b runs.
        assert_eq!(pruned(&backups, count(1)), ["d", "e"]);
        let age = Retention {
            count: None,
            max_age: Some("1d".into()),
        };
        assert_eq!(pruned(&backups, age), ["d", "e"]);
        let both = Retention {
            count: Some(4),
            max_age: Some("3d".into()),
        };
        assert_eq!(pruned(&backups, both), ["e"]);
        // Nothing completed at all: failures go by the rules, nothing else.
        let failed = [backup("x", 1, Failed), backup("y", 2, Failed)];
        assert_eq!(pruned(&failed, count(1)), ["y"]);
    }
}
