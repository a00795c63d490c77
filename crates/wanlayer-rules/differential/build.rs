//! Links libpcap (Debian: libpcap-dev).
fn main() {
    println!("cargo:rustc-link-lib=pcap");
}
