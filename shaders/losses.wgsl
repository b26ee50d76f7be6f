// Training losses on the device. `gpo`: an alignment step's loss (the GPO family on summed log-probs), d loss / d log π
// per sequence and the step's record [mean loss, log π (2P), log π_ref (2P)]. `preference`: a proxy's
// position-debiased pair loss on its rows' scores and d loss / d score per row. One workgroup each; its threads
// stride over the pairs. CPU twins: engine::kernels::losses::{pair_loss, preference_loss} (in f64; here f32).

struct Params { pairs: u32, loss: u32, beta: f32, _pad: u32 }  // gpo: 0 IPO, 1 DPO, 2 SLiC, 3 Best-of-2;
                                                                // preference: 0 pairwise, 1 Bradley–Terry

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logps: array<f32>;       // the policy's, winners 0..P then losers
@group(0) @binding(2) var<storage, read> reference: array<f32>;   // π_ref's, the same layout
@group(0) @binding(3) var<storage, read_write> dseq: array<f32>;  // d loss / d log π, the same layout
@group(0) @binding(4) var<storage, read_write> record: array<f32>;
@group(0) @binding(5) var<storage, read> scores: array<f32>;      // preference: the rows' scores
@group(0) @binding(6) var<storage, read_write> dscores: array<f32>;
@group(0) @binding(7) var<storage, read_write> loss: array<f32>;  // preference: the mean loss

fn sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

// log(1 + e^z) without overflow
fn softplus(z: f32) -> f32 {
    return max(z, 0.0) + log(1.0 + exp(-abs(z)));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gpo(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    let n = f32(p.pairs);
    var total = 0.0;
    for (var i = lid; i < p.pairs; i = i + WORKGROUP_SIZE) {
        let w = logps[i];
        let h = (w - reference[i]) - (logps[p.pairs + i] - reference[p.pairs + i]);
        let x = p.beta * h;
        // value, and dh = d value / d h (d/d log π(y_w) = dh, d/d log π(y_l) = −dh)
        var value = 0.0;
        var dh = 0.0;
        switch p.loss {
            case 0u: {
                value = (x - 0.5) * (x - 0.5);
                dh = 2.0 * p.beta * (x - 0.5);
            }
            case 1u: {
                value = softplus(-x);
                dh = -p.beta * sigmoid(-x);
            }
            case 2u: {
                if (x < 1.0) {
                    value = 1.0 - x;
                    dh = -p.beta;
                }
            }
            default: {
                value = -w;
            }
        }
        total = total + value;
        if (p.loss == 3u) {
            // Best-of-2: SFT on the winner; the loser has no gradient.
            dseq[i] = -1.0 / n;
            dseq[p.pairs + i] = 0.0;
        } else {
            dseq[i] = dh / n;
            dseq[p.pairs + i] = -dh / n;
        }
    }
    let sum = workgroup_sum(lid, total);
    if (lid == 0u) {
        record[0] = sum / n;
    }
    for (var j = lid; j < 2u * p.pairs; j = j + WORKGROUP_SIZE) {
        record[1u + j] = logps[j];
        record[1u + 2u * p.pairs + j] = reference[j];
    }
}

// A pair's forward logit f and swapped logit s: pairwise, the scores of rows (x, y_w, y_l) and (x, y_l, y_w);
// Bradley–Terry, z = s_w − s_l and −z. Loss ½·softplus(−f) + ½·softplus(s), its derivatives d1 = −½σ(−f)/n and
// d2 = ½σ(s)/n; Bradley–Terry's rows get d1 − d2 (winner) and d2 − d1 (loser).
@compute @workgroup_size(WORKGROUP_SIZE)
fn preference(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    let n = f32(p.pairs);
    var total = 0.0;
    for (var i = lid; i < p.pairs; i = i + WORKGROUP_SIZE) {
        var f = scores[i];
        var s = scores[p.pairs + i];
        if (p.loss == 1u) {
            let z = scores[i] - scores[p.pairs + i];
            f = z;
            s = -z;
        }
        total = total + 0.5 * softplus(-f) + 0.5 * softplus(s);
        let d1 = -0.5 * sigmoid(-f) / n;
        let d2 = 0.5 * sigmoid(s) / n;
        if (p.loss == 1u) {
            dscores[i] = d1 - d2;
            dscores[p.pairs + i] = d2 - d1;
        } else {
            dscores[i] = d1;
            dscores[p.pairs + i] = d2;
        }
    }
    let sum = workgroup_sum(lid, total);
    if (lid == 0u) {
        loss[0] = sum / n;
    }
}
