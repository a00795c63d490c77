pub fn run(_: &[String]) -> Result<(), String> { Err("demo not built yet".into()) }
