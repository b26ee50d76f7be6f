// An alignment step's loss on the device (the GPO family on summed log-probs): d loss / d log π per sequence and
// the step's record [mean loss, log π (2P), log π_ref (2P)]. One workgroup; its threads stride over the pairs.
// CPU twin: engine::kernels::losses::pair_loss (train::losses::gpo, in f64; here f32).

struct Params { pairs: u32, loss: u32, beta: f32, _pad: u32 }  // loss: 0 IPO, 1 DPO, 2 SLiC, 3 Best-of-2

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logps: array<f32>;       // the policy's, winners 0..P then losers
@group(0) @binding(2) var<storage, read> reference: array<f32>;   // π_ref's, the same layout
@group(0) @binding(3) var<storage, read_write> dseq: array<f32>;  // d loss / d log π, the same layout
@group(0) @binding(4) var<storage, read_write> record: array<f32>;

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
