fn main() {
    let bytes = std::fs::read("/work/shared/assets/images/dog.jpg").unwrap();
    let rgb = tally_worker::detector::decode_image(&bytes).unwrap();
    let (t, lb) = tally_worker::yolox::letterbox(rgb.as_raw(), rgb.width(), rgb.height(), 416);
    let py: Vec<f32> = std::fs::read("/tmp/dog_input.f32")
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut hist = [0usize; 8];
    let mut maxd = 0.0f32;
    for (a, b) in t.iter().zip(&py) {
        let d = (a - b).abs();
        maxd = maxd.max(d);
        hist[(d as usize).min(7)] += 1;
    }
    println!("{lb:?} max diff {maxd} hist {hist:?}");
    // Pillow resize alone on the decoded-by-Pillow pixels: compare with PIL-decoded raw
    if let Ok(raw) = std::fs::read("/tmp/dog_pil_rgb.raw") {
        let (t2, _) = tally_worker::yolox::letterbox(&raw, rgb.width(), rgb.height(), 416);
        let mut hist = [0usize; 8];
        for (a, b) in t2.iter().zip(&py) {
            hist[((a - b).abs() as usize).min(7)] += 1;
        }
        println!("same decode: hist {hist:?}");
        let mut hist = [0usize; 8];
        for (a, b) in rgb.as_raw().iter().zip(&raw) {
            hist[((*a as i32 - *b as i32).abs() as usize).min(7)] += 1;
        }
        println!("jpeg decoders: hist {hist:?}");
    }
    for name in ["dog", "eagle", "giraffe", "horses", "kite", "person"] {
        let d = tally_worker::Detector::load(
            "/work/shared/assets/models/yolox_nano.onnx",
            std::env::args().nth(1).unwrap().parse().unwrap(),
            1,
        )
        .unwrap();
        let out = d
            .detect(&std::fs::read(format!("/work/shared/assets/images/{name}.jpg")).unwrap())
            .unwrap();
        println!(
            "{name}: {:?}",
            out.detections
                .iter()
                .map(|d| (
                    d.class_id,
                    (d.score * 1e4).round() / 1e4,
                    d.bbox.map(|v| (v * 10.0).round() / 10.0)
                ))
                .collect::<Vec<_>>()
        );
    }
}
