fn main() {
    std::process::exit(scaleplan::cli::main());
}
