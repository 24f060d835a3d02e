//! The bare pingora pass-through of `bench/run` with the allocator the gateway uses, so the
//! benchmark shows what the allocator alone is worth.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "bare_pingora.rs"]
mod bare;

fn main() {
    bare::main();
}
