//! f16 tensors: round trip bit for bit beside f32 ones, dtype mismatches named, a file that
//! safetensors itself reads with the F16 dtype.

use super::*;

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wgrec-half-{}-{name}", std::process::id()))
}

#[test]
fn f16_and_f32_tensors_round_trip_bit_for_bit() {
    let mut ckpt = Checkpoint::new();
    // Every class of half: zeros, subnormals, normals, the largest, infinities.
    let bits: Vec<u16> = vec![
        0x0000, 0x8000, 0x0001, 0x03ff, 0x3c00, 0xc555, 0x7bff, 0x7c00,
    ];
    ckpt.insert_f16("emb.0.a", &[2, 4], bits.clone())
        .expect("f16");
    ckpt.insert_tensor("emb.0.a.state", &[2, 1], vec![0.5, -1.25])
        .expect("f32");
    ckpt.insert_tensor("b", &[1], vec![3.0]).expect("f32");
    let path = scratch("round-trip.safetensors");
    ckpt.write(&path).expect("write");
    let bytes = std::fs::read(&path).expect("read bytes");
    let back = Checkpoint::read(&path).expect("read");
    let _ = std::fs::remove_file(&path);
    assert_eq!(back.tensor_f16("emb.0.a", &[2, 4]).expect("f16"), &bits[..]);
    assert_eq!(
        back.tensor("emb.0.a.state", &[2, 1]).expect("state"),
        &[0.5, -1.25]
    );
    assert_eq!(back.tensor("b", &[1]).expect("b"), &[3.0]);
    // safetensors reads the file as its own, with the F16 dtype.
    let parsed = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors reads it");
    let view = parsed.tensor("emb.0.a").expect("tensor");
    assert_eq!(view.dtype(), Dtype::F16);
    assert_eq!(view.data(), bytemuck::cast_slice::<u16, u8>(&bits));
}

#[test]
fn a_tensor_of_the_other_dtype_is_an_error_naming_it() {
    let mut ckpt = Checkpoint::new();
    ckpt.insert_f16("h", &[2], vec![0, 0]).expect("f16");
    ckpt.insert_tensor("f", &[2], vec![0.0, 0.0]).expect("f32");
    let e = ckpt
        .tensor("h", &[2])
        .expect_err("f16 read as f32")
        .to_string();
    assert!(e.contains("h") && e.contains("F16 tensor where F32"), "{e}");
    let e = ckpt
        .tensor_f16("f", &[2])
        .expect_err("f32 read as f16")
        .to_string();
    assert!(e.contains("F32 tensor where F16"), "{e}");
    let e = ckpt
        .tensor_f16("h", &[1, 2])
        .expect_err("shape")
        .to_string();
    assert!(e.contains("[2]") && e.contains("[1, 2]"), "{e}");
    assert!(
        ckpt.insert_f16("x", &[3], vec![0; 2]).is_err(),
        "short data"
    );
    // Widened, an f16 tensor is the f32 tensor of its values.
    let mut wide = ckpt.clone();
    wide.insert_f16("w", &[2], vec![0x3c00, 0xc100])
        .expect("f16");
    wide.widen_halves();
    assert!(wide.halves().is_empty());
    assert_eq!(wide.tensor("w", &[2]).expect("f32 now"), &[1.0, -2.5]);
    // A name holds one dtype: inserting the other replaces it.
    ckpt.insert_tensor("h", &[1], vec![1.0]).expect("replace");
    assert!(!ckpt.is_f16("h"));
    assert_eq!(ckpt.tensor("h", &[1]).expect("f32 now"), &[1.0]);
}
