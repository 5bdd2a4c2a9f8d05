fn main() -> std::process::ExitCode {
    fastfn::cli::main()
}
