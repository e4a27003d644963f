use std::time::Instant;
fn main() {
    let bytes = std::fs::read("/work/shared/assets/images/dog.jpg").unwrap();
    let img = image::load_from_memory(&bytes)
        .unwrap()
        .resize_exact(640, 480, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&img)
        .unwrap();
    let lb = tally_worker::yolox::Letterbox::new(640, 480, 416);
    let mut out = vec![0f32; lb.input_len()];
    let mut best = f64::MAX;
    let mut bestd = f64::MAX;
    for _ in 0..200 {
        let t = Instant::now();
        tally_worker::yolox::letterbox_into(img.as_raw(), &lb, &mut out);
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let _ = tally_worker::detector::decode_image(&jpeg).unwrap();
        bestd = bestd.min(t.elapsed().as_secs_f64() * 1e3);
    }
    // postprocess on a synthetic output: random-ish low objectness with a few candidates
    let n = tally_worker::yolox::anchor_count(416);
    let mut o = vec![0.01f32; n * 85];
    for i in (0..n).step_by(97) {
        o[i * 85 + 4] = 0.9;
        o[i * 85 + 5 + (i % 80)] = 0.8;
    }
    let mut bestp = f64::MAX;
    for _ in 0..200 {
        let t = Instant::now();
        let d = tally_worker::yolox::decode(&o, 85, &lb);
        bestp = bestp.min(t.elapsed().as_secs_f64() * 1e3);
        assert!(!d.is_empty());
    }
    println!("640x480: letterbox min {best:.3} ms, post min {bestp:.3} ms, jpeg decode min {bestd:.3} ms");
}
