//! Turning (prompt, response) pairs into the model's inputs: tokens, next-token targets and the weights
//! that select the response's tokens, so `Gpt::sequence_logprobs` gives log π(y|x) over the response only.

use crate::task::PAD;

/// Host-side arrays for B sequences of T tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceBatch {
    pub b: usize,
    pub t: usize,
    pub tokens: Vec<u32>,
    /// targets[b·T + i] = tokens[b·T + i + 1] (PAD at the end)
    pub targets: Vec<u32>,
    /// 1 where the target is a response token, else 0
    pub weights: Vec<f32>,
}

impl SequenceBatch {
    /// Each sequence is prompt ⊕ response, right-padded to `t`. Responses longer than t − |prompt| are cut.
    pub fn new(prompts: &[Vec<u32>], responses: &[Vec<u32>], t: usize) -> Self {
        let b = prompts.len();
        assert_eq!(b, responses.len(), "one response per prompt");
        let (mut tokens, mut targets, mut weights) = (vec![PAD; b * t], vec![PAD; b * t], vec![0.0; b * t]);
        for (r, (p, y)) in prompts.iter().zip(responses).enumerate() {
            let seq: Vec<u32> = p.iter().chain(y).copied().take(t).collect();
            tokens[r * t..r * t + seq.len()].copy_from_slice(&seq);
            for i in 0..seq.len().saturating_sub(1) {
                targets[r * t + i] = seq[i + 1];
                if i + 1 >= p.len() {
                    weights[r * t + i] = 1.0;
                }
            }
        }
        SequenceBatch { b, t, tokens, targets, weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_select_the_response_targets() {
        let batch = SequenceBatch::new(&[vec![5, 6, 2]], &[vec![7, 1]], 6);
        assert_eq!(batch.tokens, vec![5, 6, 2, 7, 1, 0]);
        assert_eq!(batch.targets, vec![6, 2, 7, 1, 0, 0]);
        assert_eq!(batch.weights, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    }
}
