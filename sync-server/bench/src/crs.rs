//! CRS transform throughput (placeholder until the CRS issue lands).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet implemented")
}
