"""Run the generated Transformer on a sample batch: shapes and parameter counts."""
import torch

from generated.transformer import Transformer


def main() -> None:
    torch.manual_seed(0)
    model = Transformer().eval()
    batch, src_len, tgt_len = 2, 11, 7
    src = torch.randint(0, 37000, (batch, src_len))
    tgt = torch.randint(0, 37000, (batch, tgt_len))
    src_mask = torch.ones(batch, src_len, dtype=torch.bool)
    src_mask[1, 8:] = False                    # the second sentence is padded
    with torch.no_grad():
        logits = model(src, tgt, src_mask)
    params = sum(p.numel() for p in model.parameters())
    print(f"Transformer: src {list(src.shape)}  tgt {list(tgt.shape)}  ->  logits {list(logits.shape)}")
    print(f"parameters: {params:,} (embedding shared by source, target and the output projection)")
    print(f"next-token guesses for sentence 0: {logits[0].argmax(-1).tolist()}")


if __name__ == "__main__":
    main()
